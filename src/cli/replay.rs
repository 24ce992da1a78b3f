//! `stancewatch replay`: re-process the input records of a time range with the service's own loop, then stop.
//!
//! The service is `run`'s, with three differences (see `stream::replay` for the protocol): a consumer group of
//! its own (the live group's offsets are untouched), partitions taken at the offsets Kafka's offsets-for-times
//! lookup gives for the range, and a stop once every partition reaches the end of its range. Outputs go to the
//! configured topics, or to parallel ones with `--output-prefix`. The plan is printed first and a summary at
//! the end, on stdout; the exit status says whether the whole range was processed.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use stancewatch::config::{Config, LogFormat};
use stancewatch::stream::replay::{ReplayPlan, ReplayWindow};
use stancewatch::stream::Service;
use tracing::info;

use super::run::stop_on_signal;
use super::runtime;

#[derive(clap::Args)]
pub struct Args {
    /// A TOML file overriding config/default.toml; STANCEWATCH__SECTION__KEY variables override both.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Start of the range (records stamped at or after it): an RFC 3339 time (2026-11-01T00:00:00Z), a date
    /// (2026-11-01, midnight UTC), or a time ago (30d, 12h, 90m).
    #[arg(long, value_parser = parse_time)]
    from: DateTime<Utc>,
    /// End of the range (records stamped before it), in the same forms; without it, the replay ends at the
    /// records that were in the topic when it started.
    #[arg(long, value_parser = parse_time)]
    to: Option<DateTime<Utc>>,
    /// Consumer group of the replay [default: the live group's name, "-replay-" and the range]. Running the
    /// same replay again with the same group resumes where it stopped.
    #[arg(long)]
    group: Option<String>,
    /// Prefix of the output topics (enriched, entity-stances and dead-letter), e.g. "replay." to write beside
    /// the live outputs for a comparison; the topics must exist or be auto-created.
    #[arg(long)]
    output_prefix: Option<String>,
}

pub fn replay(args: Args, log_format: Option<LogFormat>) -> Result<ExitCode> {
    let mut config = Config::load(args.config.as_deref())?;
    super::init_logging(log_format.unwrap_or(config.log.format), &config.log.level);
    let window = ReplayWindow::new(args.from, args.to)?;
    let k = &mut config.kafka;
    k.group_id = match args.group {
        Some(group) if group == k.group_id => bail!(
            "--group {group} is the live service's consumer group: a replay needs a group of its own, \
             or it would move the live service's offsets; leave --group out for a default one"
        ),
        Some(group) => group,
        None => window.default_group(&k.group_id),
    };
    if let Some(prefix) = &args.output_prefix {
        for topic in [
            &mut k.enriched_topic,
            &mut k.entity_stances_topic,
            &mut k.dlq_topic,
        ] {
            *topic = format!("{prefix}{topic}");
        }
    }
    let plan = ReplayPlan::make(&config, window).context("planning the replay")?;
    print_plan(&plan, &config);

    runtime()?.block_on(async {
        let service = Service::new(config).with_replay(plan.clone()).start().await?;
        let bar = progress_bar(plan.remaining());
        let metrics = service.metrics.clone();
        let ticker = tokio::spawn({
            let bar = bar.clone();
            async move {
                loop {
                    bar.set_position(metrics.messages_consumed());
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
        let summary = stop_on_signal(service).await;
        ticker.abort();
        bar.finish_and_clear();
        let summary = summary?;
        let secs = summary.elapsed.as_secs_f64();
        println!(
            "replay {}: {} records consumed, {} enriched, {} dead-lettered in {:.1} s ({:.0} records/s)",
            if summary.range_complete {
                "complete"
            } else {
                "stopped before the end of the range"
            },
            summary.consumed,
            summary.enriched,
            summary.dead_lettered,
            secs,
            summary.consumed as f64 / secs.max(1e-9),
        );
        for (partition, offset) in &summary.blocked {
            println!(
                "  partition {partition} is blocked at offset {offset}: a record that could be \
                 delivered nowhere (see the log); fix the output topics and run the same replay again"
            );
        }
        info!(
            consumed = summary.consumed,
            enriched = summary.enriched,
            dead_lettered = summary.dead_lettered,
            complete = summary.range_complete,
            "replay stopped"
        );
        Ok(if summary.range_complete && summary.blocked.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

fn print_plan(plan: &ReplayPlan, config: &Config) {
    let k = &config.kafka;
    let to = plan.window.to.map_or_else(
        || "the records there now".to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    println!(
        "replay of {} from {} to {to}",
        plan.topic,
        plan.window
            .from
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    println!(
        "  group {}; outputs to {}, {}, {}",
        plan.group, k.enriched_topic, k.entity_stances_topic, k.dlq_topic
    );
    for r in &plan.partitions {
        let resumed = if r.position > r.start {
            format!(", resumed at {}", r.position)
        } else {
            String::new()
        };
        println!(
            "  partition {}: offsets {}..{} ({} records{resumed})",
            r.partition,
            r.start,
            r.end,
            r.len()
        );
    }
    println!(
        "  {} records in the range, {} to process",
        plan.records(),
        plan.remaining()
    );
}

/// Records consumed against the range's size, drawn only on a terminal (a Kubernetes Job's log gets the
/// plan and the summary).
fn progress_bar(total: i64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total.max(0) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "replaying [{bar:40}] {pos}/{len} records ({per_sec}, {eta} left)",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// An RFC 3339 time, a date (midnight UTC), or a time ago: a number and `d`, `h`, `m` or `s`.
fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time_at(s, Utc::now())
}

fn parse_time_at(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.to_utc());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    let ago = s
        .char_indices()
        .last()
        .and_then(|(i, unit)| {
            let n: i64 = s[..i].parse().ok().filter(|n| *n >= 0)?;
            match unit {
                'd' => chrono::Duration::try_days(n),
                'h' => chrono::Duration::try_hours(n),
                'm' => chrono::Duration::try_minutes(n),
                's' => chrono::Duration::try_seconds(n),
                _ => None,
            }
        })
        .and_then(|d| now.checked_sub_signed(d));
    ago.ok_or_else(|| {
        format!(
            "`{s}` is not a time: give an RFC 3339 time (2026-11-01T00:00:00Z), a date (2026-11-01) \
             or a time ago (30d, 12h, 90m)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_dates_or_ago() {
        let now = DateTime::parse_from_rfc3339("2026-12-05T10:00:00Z")
            .unwrap()
            .to_utc();
        let at = |s| parse_time_at(s, now).map(|t| t.to_rfc3339());
        assert_eq!(
            at("2026-11-01T02:00:00+02:00").unwrap(),
            "2026-11-01T00:00:00+00:00"
        );
        assert_eq!(at("2026-11-01").unwrap(), "2026-11-01T00:00:00+00:00");
        assert_eq!(at("7d").unwrap(), "2026-11-28T10:00:00+00:00");
        assert_eq!(at("90m").unwrap(), "2026-12-05T08:30:00+00:00");
        for bad in ["yesterday", "7w", "-3d", "d", "", "2026-13-01"] {
            let e = at(bad).unwrap_err();
            assert!(e.contains("RFC 3339"), "{bad}: {e}");
        }
    }
}
