//! The scheduling class of the service's I/O threads.
//!
//! On a busy instance the NLP worker threads keep every core busy, and the I/O threads (librdkafka's broker
//! and main threads, the producer's polling thread, the consumer loop) wake up thousands of times a second for
//! a few microseconds each: a fetch response, a batch of delivery reports, a poll timeout. Under Linux's
//! default policy each such wake-up may preempt an NLP thread in the middle of an analysis, and the
//! analysis then pays for the switch and for its caches refilled. `SCHED_BATCH` keeps a thread's fair share
//! of the CPU (the same weight as the default policy) but its wake-ups never preempt the running thread: it
//! waits, at most a scheduler slice (a few milliseconds), for a core to come free. The I/O work is the same;
//! it just runs in fewer, longer stretches, and the NLP threads keep their caches.
//!
//! librdkafka starts its threads from the thread that creates the client (and its broker threads from its
//! own main thread), and Linux threads inherit the policy of the thread that starts them. So creating the
//! clients on a thread that is itself `SCHED_BATCH` ([`on_batch_thread`]) puts every librdkafka thread of
//! those clients in the class, with no hook into librdkafka. Switching to `SCHED_BATCH` needs no privilege.
//! Elsewhere than on Linux, or if the switch is refused, the threads keep the default policy.

use tracing::debug;

/// Runs `f` on a new thread in the `SCHED_BATCH` class and returns its result; threads that `f` starts, and
/// the threads those start, inherit the class.
pub fn on_batch_thread<T, F>(f: F) -> T
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter_batch_class();
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Moves the calling thread into the `SCHED_BATCH` class.
pub fn enter_batch_class() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param for the call's duration.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if rc != 0 {
            debug!(
                error = %std::io::Error::last_os_error(),
                "could not move an I/O thread to SCHED_BATCH; it keeps the default policy"
            );
        }
    }
}

/// The calling thread's scheduling policy (`libc::SCHED_*`), for tests.
#[cfg(all(test, target_os = "linux"))]
fn current_policy() -> i32 {
    // SAFETY: pid 0 is the calling thread.
    unsafe { libc::sched_getscheduler(0) }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_class_reaches_threads_started_from_the_batch_thread_and_not_the_caller() {
        let (on_it, grandchild) = on_batch_thread(|| {
            let grandchild = std::thread::spawn(current_policy).join().unwrap();
            (current_policy(), grandchild)
        });
        assert_eq!(on_it, libc::SCHED_BATCH);
        assert_eq!(grandchild, libc::SCHED_BATCH);
        assert_eq!(current_policy(), libc::SCHED_OTHER);
    }

    /// The claim the service relies on: librdkafka's own threads inherit the class of the creating thread.
    #[test]
    fn librdkafka_threads_of_a_client_created_on_a_batch_thread_are_in_the_class() {
        use rdkafka::config::ClientConfig;
        use rdkafka::producer::BaseProducer;

        let producer: BaseProducer = on_batch_thread(|| {
            ClientConfig::new()
                // Nothing listens there; the client starts its threads all the same.
                .set("bootstrap.servers", "127.0.0.1:1")
                .set("log_level", "0")
                .create()
                .unwrap()
        });
        let count = || {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|task| {
                    let task = task.ok()?.path();
                    let name = std::fs::read_to_string(task.join("comm")).ok()?;
                    let tid: libc::pid_t = task.file_name()?.to_str()?.parse().ok()?;
                    // SAFETY: a thread id of this process; a thread gone meanwhile gives -1.
                    let policy = unsafe { libc::sched_getscheduler(tid) };
                    (name.starts_with("rdk:") && policy == libc::SCHED_BATCH).then_some(name)
                })
                .count()
        };
        // librdkafka starts the broker threads from its main thread, a moment after create() returns.
        let mut batch_rdk_threads = count();
        for _ in 0..50 {
            if batch_rdk_threads >= 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            batch_rdk_threads = count();
        }
        drop(producer);
        // librdkafka's main thread and the bootstrap broker's thread at least.
        assert!(
            batch_rdk_threads >= 2,
            "{batch_rdk_threads} rdk: thread(s) in SCHED_BATCH"
        );
    }
}
