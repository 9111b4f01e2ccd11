/*
 * A stand-in for ZooKeeper's own Prometheus metrics provider, for the sandbox only.
 *
 * Why: Debian 12's `zookeeper` 3.8.0 package does not ship
 * `zookeeper-prometheus-metrics` (its zookeeper.jar holds only metrics/impl/DefaultMetricsProvider
 * and NullMetricsProvider), and no Debian package ships Prometheus' `simpleclient`. The official
 * image (the upstream tarball) ships both. This class takes the provider's place under the
 * provider's class name, so the zoo.cfg the tool renders is the one production runs with.
 *
 * What it reproduces, from upstream (apache/zookeeper, release-3.8.x):
 *  - zookeeper-metrics-providers/zookeeper-prometheus-metrics/.../PrometheusMetricsProvider.java:
 *    `configure` reads httpHost (default 0.0.0.0), httpPort (default 7000); `start` serves the
 *    servlet at `/metrics` only; every metric is registered with its ZooKeeper name as both name and
 *    help (`Counter.build(name, name)`), no prefix; sets carry one label, `key`; `dump` (what `mntr`
 *    prints) yields each sample under `name` or `name{key="v"}`.
 *  - prometheus/client_java parent-0.9.0 (the simpleclient ZooKeeper 3.8 pins),
 *    simpleclient_common/.../TextFormat.java `write004`: `# HELP name help`, `# TYPE name type`,
 *    then one line per sample, each label written as `name="value",` (a trailing comma before
 *    `}`), values by `Double.toString` (`1.0`, `NaN`); Content-Type
 *    `text/plain; version=0.0.4; charset=utf-8`. Counters have no `_total` suffix in 0.9.0.
 *  - Upstream's own expectations (PrometheusMetricsProviderTest.java): `cc 10.0` after a counter
 *    got 10, `gg 78.0` for a gauge returning 78, and for a summary that got 10 twice
 *    `cc_count 2.0`, `cc_sum 20.0`, `cc{quantile="0.5",} 10.0`. `main` replays them.
 *
 * What it does not: the JVM metrics of `exportJvmInfo` (simpleclient_hotspot), and quantiles are
 * taken over the last 1024 values instead of simpleclient's time-windowed CKMS estimate.
 */
package org.apache.zookeeper.metrics.prometheus;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiConsumer;
import org.apache.zookeeper.metrics.Counter;
import org.apache.zookeeper.metrics.CounterSet;
import org.apache.zookeeper.metrics.Gauge;
import org.apache.zookeeper.metrics.GaugeSet;
import org.apache.zookeeper.metrics.MetricsContext;
import org.apache.zookeeper.metrics.MetricsProvider;
import org.apache.zookeeper.metrics.MetricsProviderLifeCycleException;
import org.apache.zookeeper.metrics.Summary;
import org.apache.zookeeper.metrics.SummarySet;

public class PrometheusMetricsProvider implements MetricsProvider {

    static final String CONTENT_TYPE_004 = "text/plain; version=0.0.4; charset=utf-8";

    private String host = "0.0.0.0";
    private int port = 7000;
    private HttpServer server;
    private final Context root = new Context();

    /** One sample: a name, an optional `key` label, a value. */
    private static final class Sample {
        final String name;
        final String key;
        final double value;

        Sample(String name, String key, double value) {
            this.name = name;
            this.key = key;
            this.value = value;
        }
    }

    /** One metric family: its type and its samples, in the order simpleclient writes them. */
    private interface Family {
        String type();

        List<Sample> samples();
    }

    private static final class Values {
        private final long[] ring = new long[1024];
        private int next;
        private long count;
        private long sum;

        synchronized void add(long v) {
            ring[next] = v;
            next = (next + 1) % ring.length;
            count++;
            sum += v;
        }

        synchronized double quantile(double q) {
            int n = (int) Math.min(count, ring.length);
            if (n == 0) {
                return Double.NaN;
            }
            long[] sorted = Arrays.copyOf(ring, n);
            Arrays.sort(sorted);
            int rank = (int) Math.ceil(q * n) - 1;
            return sorted[Math.max(0, Math.min(n - 1, rank))];
        }

        synchronized void summarise(String name, String key, double[] quantiles, List<Sample> out) {
            for (double q : quantiles) {
                out.add(new Sample(name + "{quantile=\"" + q + "\"", key, quantile(q)));
            }
            out.add(new Sample(name + "_count", key, count));
            out.add(new Sample(name + "_sum", key, sum));
        }
    }

    private static double[] quantiles(MetricsContext.DetailLevel level) {
        return level == MetricsContext.DetailLevel.BASIC ? new double[] {0.5} : new double[] {0.5, 0.9, 0.99};
    }

    private static final class Context implements MetricsContext {
        final ConcurrentMap<String, Family> families = new ConcurrentHashMap<>();

        @Override
        public MetricsContext getContext(String name) {
            return this; // upstream: "no hierarchy yet"
        }

        @Override
        public Counter getCounter(String name) {
            final class C implements Counter, Family {
                final AtomicLong value = new AtomicLong();

                @Override
                public void add(long delta) {
                    if (delta >= 0) { // simpleclient refuses a negative increment; upstream logs it
                        value.addAndGet(delta);
                    }
                }

                @Override
                public long get() {
                    return value.get();
                }

                @Override
                public String type() {
                    return "counter";
                }

                @Override
                public List<Sample> samples() {
                    return List.of(new Sample(name, null, value.get()));
                }
            }
            return (Counter) families.computeIfAbsent(name, n -> new C());
        }

        @Override
        public CounterSet getCounterSet(String name) {
            final class S implements CounterSet, Family {
                final ConcurrentMap<String, AtomicLong> values = new ConcurrentHashMap<>();

                @Override
                public void add(String key, long delta) {
                    if (delta >= 0) {
                        values.computeIfAbsent(key, k -> new AtomicLong()).addAndGet(delta);
                    }
                }

                @Override
                public String type() {
                    return "counter";
                }

                @Override
                public List<Sample> samples() {
                    List<Sample> out = new ArrayList<>();
                    new TreeMap<>(values).forEach((k, v) -> out.add(new Sample(name, k, v.get())));
                    return out;
                }
            }
            return (CounterSet) families.computeIfAbsent(name, n -> new S());
        }

        @Override
        public void registerGauge(String name, Gauge gauge) {
            families.put(name, new Family() {
                @Override
                public String type() {
                    return "gauge";
                }

                @Override
                public List<Sample> samples() {
                    Number v = gauge.get();
                    return List.of(new Sample(name, null, v == null ? Double.NaN : v.doubleValue()));
                }
            });
        }

        @Override
        public void unregisterGauge(String name) {
            families.remove(name);
        }

        @Override
        public void registerGaugeSet(String name, GaugeSet set) {
            families.put(name, new Family() {
                @Override
                public String type() {
                    return "gauge";
                }

                @Override
                public List<Sample> samples() {
                    List<Sample> out = new ArrayList<>();
                    Map<String, Number> values = set.values();
                    if (values != null) {
                        new TreeMap<>(values).forEach((k, v) -> out.add(new Sample(name, k, v.doubleValue())));
                    }
                    return out;
                }
            });
        }

        @Override
        public void unregisterGaugeSet(String name) {
            families.remove(name);
        }

        @Override
        public Summary getSummary(String name, DetailLevel level) {
            final class S implements Summary, Family {
                final Values values = new Values();

                @Override
                public void add(long v) {
                    values.add(v);
                }

                @Override
                public String type() {
                    return "summary";
                }

                @Override
                public List<Sample> samples() {
                    List<Sample> out = new ArrayList<>();
                    values.summarise(name, null, quantiles(level), out);
                    return out;
                }
            }
            return (Summary) families.computeIfAbsent(name, n -> new S());
        }

        @Override
        public SummarySet getSummarySet(String name, DetailLevel level) {
            final class S implements SummarySet, Family {
                final ConcurrentMap<String, Values> values = new ConcurrentHashMap<>();

                @Override
                public void add(String key, long v) {
                    values.computeIfAbsent(key, k -> new Values()).add(v);
                }

                @Override
                public String type() {
                    return "summary";
                }

                @Override
                public List<Sample> samples() {
                    List<Sample> out = new ArrayList<>();
                    new TreeMap<>(values).forEach((k, v) -> v.summarise(name, k, quantiles(level), out));
                    return out;
                }
            }
            return (SummarySet) families.computeIfAbsent(name, n -> new S());
        }
    }

    /** A sample's line as `write004` writes it: labels each followed by a comma. */
    private static void line(StringBuilder b, Sample s) {
        String name = s.name;
        String quantile = null;
        int brace = name.indexOf('{');
        if (brace >= 0) {
            quantile = name.substring(brace + 1);
            name = name.substring(0, brace);
        }
        b.append(name);
        if (s.key != null || quantile != null) {
            b.append('{');
            if (s.key != null) {
                b.append("key=\"").append(escape(s.key)).append("\",");
            }
            if (quantile != null) {
                b.append(quantile).append(',');
            }
            b.append('}');
        }
        b.append(' ').append(goString(s.value)).append('\n');
    }

    /** Collector.doubleToGoString in simpleclient 0.9.0. */
    private static String goString(double d) {
        if (d == Double.POSITIVE_INFINITY) {
            return "+Inf";
        }
        if (d == Double.NEGATIVE_INFINITY) {
            return "-Inf";
        }
        if (Double.isNaN(d)) {
            return "NaN";
        }
        return Double.toString(d);
    }

    private static String escape(String v) {
        return v.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
    }

    String text() {
        StringBuilder b = new StringBuilder();
        new TreeMap<>(root.families).forEach((name, f) -> {
            b.append("# HELP ").append(name).append(' ').append(name).append('\n');
            b.append("# TYPE ").append(name).append(' ').append(f.type()).append('\n');
            for (Sample s : f.samples()) {
                line(b, s);
            }
        });
        return b.toString();
    }

    @Override
    public void configure(Properties configuration) throws MetricsProviderLifeCycleException {
        host = configuration.getProperty("httpHost", "0.0.0.0");
        port = Integer.parseInt(configuration.getProperty("httpPort", "7000"));
    }

    @Override
    public void start() throws MetricsProviderLifeCycleException {
        try {
            server = HttpServer.create(new InetSocketAddress(host, port), 0);
        } catch (IOException e) {
            throw new MetricsProviderLifeCycleException(e);
        }
        server.createContext("/", exchange -> {
            String method = exchange.getRequestMethod();
            boolean read = method.equals("GET") || method.equals("POST");
            int status = !exchange.getRequestURI().getPath().equals("/metrics") ? 404 : read ? 200 : 405;
            byte[] body = status == 200 ? text().getBytes(StandardCharsets.UTF_8) : new byte[0];
            exchange.getResponseHeaders().set("Content-Type", CONTENT_TYPE_004);
            exchange.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        server.start();
    }

    @Override
    public MetricsContext getRootContext() {
        return root;
    }

    @Override
    public void stop() {
        if (server != null) {
            server.stop(0);
            server = null;
        }
    }

    @Override
    public void dump(BiConsumer<String, Object> sink) {
        new TreeMap<>(root.families).forEach((name, f) -> {
            for (Sample s : f.samples()) {
                String key = s.name;
                int brace = key.indexOf('{');
                String quantile = brace >= 0 ? key.substring(brace + 1) : null;
                String base = brace >= 0 ? key.substring(0, brace) : key;
                List<String> labels = new ArrayList<>();
                if (s.key != null) {
                    labels.add("key=\"" + s.key + "\"");
                }
                if (quantile != null) {
                    labels.add(quantile);
                }
                sink.accept(labels.isEmpty() ? base : base + "{" + String.join(",", labels) + "}", s.value);
            }
        });
    }

    @Override
    public void resetAllValues() {
        // upstream: "not supported on Prometheus"
    }

    /**
     * Replays upstream's PrometheusMetricsProviderTest scenarios on an ephemeral port and prints
     * the port; serves until stdin closes. The sandbox's tests read `/metrics` over HTTP.
     */
    public static void main(String[] args) throws Exception {
        PrometheusMetricsProvider p = new PrometheusMetricsProvider();
        Properties c = new Properties();
        c.setProperty("httpHost", "127.0.0.1");
        c.setProperty("httpPort", "0");
        p.configure(c);
        p.start();
        MetricsContext r = p.getRootContext();
        r.getCounter("cc").add(10);
        r.getCounter("cc").add(-1);
        r.registerGauge("gg", () -> 78);
        Summary s = r.getSummary("ss", MetricsContext.DetailLevel.BASIC);
        s.add(10);
        s.add(10);
        Summary a = r.getSummary("aa", MetricsContext.DetailLevel.ADVANCED);
        a.add(10);
        a.add(10);
        r.getSummarySet("sset", MetricsContext.DetailLevel.BASIC).add("1", 5);
        r.getCounterSet("cset").add("x", 3);
        System.out.println(p.server.getAddress().getPort());
        System.out.flush();
        while (System.in.read() >= 0) {
            // serve until stdin closes
        }
        p.stop();
    }
}
