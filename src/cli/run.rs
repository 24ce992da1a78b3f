//! `stancewatch run`: the service, until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use stancewatch::config::{Config, LogFormat};
use stancewatch::stream::{RunningService, Service};
use tracing::{info, warn};

use super::runtime;

#[derive(clap::Args)]
pub struct Args {
    /// A TOML file overriding config/default.toml; STANCEWATCH__SECTION__KEY variables override both.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

pub fn run(args: Args, log_format: Option<LogFormat>) -> Result<ExitCode> {
    let config = Config::load(args.config.as_deref())?;
    super::init_logging(log_format.unwrap_or(config.log.format), &config.log.level);
    info!(
        version = env!("CARGO_PKG_VERSION"),
        mode = ?config.nlp.mode,
        "starting stancewatch"
    );
    runtime()?.block_on(async {
        let service = Service::new(config).start().await?;
        let summary = stop_on_signal(service).await?;
        info!(
            consumed = summary.consumed,
            enriched = summary.enriched,
            dead_lettered = summary.dead_lettered,
            uncommitted = summary.uncommitted_at_exit,
            "stancewatch stopped"
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// SIGTERM or SIGINT starts a graceful shutdown; a second one stops at once.
pub(super) async fn stop_on_signal(
    service: RunningService,
) -> Result<stancewatch::stream::RunSummary> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let stop = service.stop_handle();
    // The service may also end by itself (a fatal producer error): then its result is returned at once.
    let wait = service.wait();
    tokio::pin!(wait);
    tokio::select! {
        r = &mut wait => return Ok(r?),
        _ = term.recv() => info!("SIGTERM: draining in-flight articles, then exiting"),
        _ = int.recv() => info!("SIGINT: draining in-flight articles, then exiting (again to stop at once)"),
    }
    stop.shutdown();
    tokio::select! {
        r = &mut wait => Ok(r?),
        _ = async { tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} } } => {
            warn!("second signal: exiting without waiting for in-flight work (it will be redelivered)");
            std::process::exit(130);
        }
    }
}
