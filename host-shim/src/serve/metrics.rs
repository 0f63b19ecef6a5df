//! What `/metrics` tells: runs, refusals and node calls per flow (Prometheus).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::nodes::{NodeCallRecord, NodeObserver};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    flow: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowLabels {
    flow: String,
}

/// The server's metrics.
#[derive(Debug)]
pub(super) struct Metrics {
    runs: Family<RunLabels, Counter>,
    run_seconds: Family<FlowLabels, Histogram>,
    node_calls: Family<RunLabels, Counter>,
    node_seconds: Family<FlowLabels, Histogram>,
    pub(super) in_flight: Gauge,
    /// Requests waiting for a run slot (set when scraped).
    pub(super) queued: Gauge,
    auth_denied: Family<ReasonLabels, Counter>,
    webhooks: Family<ChannelLabels, Counter>,
    replies: Family<ChannelLabels, Counter>,
    schedule_runs: Family<ScheduleLabels, Counter>,
    schedule_lateness: Family<ScheduleOnly, Histogram>,
    timeouts: Family<OutcomeOnly, Counter>,
    timeout_lateness: Histogram,
    reloads: Family<OutcomeOnly, Counter>,
    packs: Family<PackLabels, Gauge>,
    /// The served pack's labels, so a swap removes them.
    serving: std::sync::Mutex<Option<PackLabels>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PackLabels {
    pack: String,
    archive: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeOnly {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScheduleLabels {
    schedule: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScheduleOnly {
    schedule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
    /// Empty for webhooks refused before verification (no series per guess).
    tenant: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

fn seconds_histogram() -> Histogram {
    // 100 µs to ~100 s.
    Histogram::new(exponential_buckets(0.0001, 4.0, 11))
}

impl Metrics {
    pub(super) fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            runs: Family::default(),
            run_seconds: Family::new_with_constructor(seconds_histogram),
            node_calls: Family::default(),
            node_seconds: Family::new_with_constructor(seconds_histogram),
            in_flight: Gauge::default(),
            queued: Gauge::default(),
            auth_denied: Family::default(),
            webhooks: Family::default(),
            replies: Family::default(),
            schedule_runs: Family::default(),
            schedule_lateness: Family::new_with_constructor(seconds_histogram),
            timeouts: Family::default(),
            timeout_lateness: seconds_histogram(),
            reloads: Family::default(),
            packs: Family::default(),
            serving: std::sync::Mutex::new(None),
        };
        registry.register(
            "pack_served",
            "The version of each reloadable pack being served (1): its id and the digest of its archive",
            metrics.packs.clone(),
        );
        registry.register(
            "pack_reloads",
            "Changes of the served .gtpack, by outcome (reloaded, refused: the previous version keeps serving)",
            metrics.reloads.clone(),
        );
        registry.register(
            "wait_timeouts",
            "Wait deadlines this server fired, by outcome (completed, waiting, failed, timeout, not_due: answered or fired elsewhere)",
            metrics.timeouts.clone(),
        );
        registry.register(
            "wait_timeout_lateness_seconds",
            "How long after its deadline a wait was fired",
            metrics.timeout_lateness.clone(),
        );
        registry.register(
            "schedule_runs",
            "Scheduled ticks this server ran, by outcome (completed, waiting, failed, timeout, unknown_flow)",
            metrics.schedule_runs.clone(),
        );
        registry.register(
            "schedule_lateness_seconds",
            "How long after its tick a scheduled run started",
            metrics.schedule_lateness.clone(),
        );
        registry.register(
            "messaging_webhooks",
            "Channel webhook requests and their events, by outcome (unverified, refused, failed; per event: ran, duplicate, from_bot, run_failed)",
            metrics.webhooks.clone(),
        );
        registry.register(
            "messaging_replies",
            "Replies to channels, by outcome (sent, failed: after retries), and flow output with no message (unreadable)",
            metrics.replies.clone(),
        );
        registry.register(
            "requests_denied",
            "Requests refused before running: no or bad credential, a tenant header naming another tenant, a flow the credential may not run, a credential over its limits",
            metrics.auth_denied.clone(),
        );
        registry.register(
            "runs",
            "Requests to run a flow, by outcome (completed, waiting, failed, timeout, busy, too_large, body_timeout, bad_input, unknown_flow)",
            metrics.runs.clone(),
        );
        registry.register(
            "run_duration_seconds",
            "Time to answer a run",
            metrics.run_seconds.clone(),
        );
        registry.register(
            "node_calls",
            "Node component calls, by outcome",
            metrics.node_calls.clone(),
        );
        registry.register(
            "node_duration_seconds",
            "Time of a node component call, per flow",
            metrics.node_seconds.clone(),
        );
        registry.register(
            "runs_in_progress",
            "Runs being executed",
            metrics.in_flight.clone(),
        );
        registry.register(
            "runs_queued",
            "Requests waiting for a run slot (at most --max-queue)",
            metrics.queued.clone(),
        );
        metrics
    }

    pub(super) fn finished(&self, flow: &str, outcome: &str, elapsed: Duration) {
        self.runs
            .get_or_create(&RunLabels {
                flow: flow.into(),
                outcome: outcome.into(),
            })
            .inc();
        self.run_seconds
            .get_or_create(&FlowLabels { flow: flow.into() })
            .observe(elapsed.as_secs_f64());
    }

    pub(super) fn denied(&self, reason: &str) {
        self.auth_denied
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc();
    }

    /// `n` webhooks or events of `channel` for `tenant` with `outcome`.
    pub(super) fn webhook(&self, channel: &str, tenant: &str, outcome: &str, n: usize) {
        self.count(&self.webhooks, channel, tenant, outcome, n);
    }

    /// `n` replies of `channel` for `tenant` with `outcome`.
    pub(super) fn reply(&self, channel: &str, tenant: &str, outcome: &str, n: usize) {
        self.count(&self.replies, channel, tenant, outcome, n);
    }

    fn count(
        &self,
        family: &Family<ChannelLabels, Counter>,
        channel: &str,
        tenant: &str,
        outcome: &str,
        n: usize,
    ) {
        if n == 0 {
            return;
        }
        family
            .get_or_create(&ChannelLabels {
                channel: channel.into(),
                tenant: tenant.into(),
                outcome: outcome.into(),
            })
            .inc_by(n as u64);
    }

    /// A tick of `schedule` ran here, `late` after its time.
    pub(super) fn ticked(&self, schedule: &str, outcome: &str, late: Duration) {
        self.schedule_runs
            .get_or_create(&ScheduleLabels {
                schedule: schedule.into(),
                outcome: outcome.into(),
            })
            .inc();
        self.schedule_lateness
            .get_or_create(&ScheduleOnly {
                schedule: schedule.into(),
            })
            .observe(late.as_secs_f64());
    }

    /// A wait deadline fired here with `outcome`, `late` after it.
    pub(super) fn timed_out(&self, outcome: &str, late: Duration) {
        self.timeouts
            .get_or_create(&OutcomeOnly {
                outcome: outcome.into(),
            })
            .inc();
        self.timeout_lateness.observe(late.as_secs_f64());
    }

    /// `pack` (its archive's digest `archive`) is served now, not the one before.
    pub(super) fn serving_pack(&self, pack: &str, archive: &str) {
        let labels = PackLabels {
            pack: pack.into(),
            archive: archive.into(),
        };
        let mut serving = self.serving.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(before) = serving.replace(labels.clone()) {
            self.packs.remove(&before);
        }
        self.packs.get_or_create(&labels).set(1);
    }

    /// The served archive changed: `outcome` of opening the new one.
    pub(super) fn reloaded(&self, outcome: &str) {
        self.reloads
            .get_or_create(&OutcomeOnly {
                outcome: outcome.into(),
            })
            .inc();
    }

    pub(super) fn rejected(&self, flow: &str, reason: &str) {
        self.runs
            .get_or_create(&RunLabels {
                flow: flow.into(),
                outcome: reason.into(),
            })
            .inc();
    }
}

impl NodeObserver for Metrics {
    fn node_call(&self, call: &NodeCallRecord<'_>) {
        let outcome = call.outcome.split(':').next().unwrap_or("ok");
        self.node_calls
            .get_or_create(&RunLabels {
                flow: call.flow.into(),
                outcome: outcome.into(),
            })
            .inc();
        self.node_seconds
            .get_or_create(&FlowLabels {
                flow: call.flow.into(),
            })
            .observe(call.elapsed.as_secs_f64());
    }
}
