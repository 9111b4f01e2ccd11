//! The simulated cloud load-balancer controller: a task in the server's runtime that polls for
//! LoadBalancer Services without an ingress address (see `State::lb_controller_tick`).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use super::Shared;

/// How often the controller looks at the Services.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(25);

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        shared
            .state()
            .lb_controller_tick(shared.lb_after, &shared.lb_addresses);
    }
}
