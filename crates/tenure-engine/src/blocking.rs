//! How async code calls the store: on tokio's blocking pool, never on a runtime thread.
//!
//! The store traits are synchronous (SQLite is; a PostgreSQL store can use the synchronous
//! `postgres` client). A store call waits on a lock or on disk, so making it from a runtime
//! thread would stall every task scheduled there; [`store`] moves it to the blocking pool and
//! awaits the result. See ARCHITECTURE.md, "the store from async code".

use std::sync::Arc;
use tenure_store::Backend;

/// Runs `f` with the store on the blocking pool. A panic inside `f` is resumed here, as if the
/// call had been made directly.
pub async fn store<T, F>(store: &Arc<dyn Backend>, f: F) -> crate::Result<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn Backend) -> tenure_store::Result<T> + Send + 'static,
{
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
        Ok(r) => Ok(r?),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(crate::EngineError::Invalid(format!("a store call was cancelled: {e}"))),
    }
}

/// Runs `f` with the application state on the blocking pool: what a request handler does when
/// its work reads or writes the store (a view, a report, a decision, an import). A panic inside
/// `f` is resumed here.
pub async fn app<T, E, F>(app: &crate::app::App, f: F) -> std::result::Result<T, E>
where
    T: Send + 'static,
    E: From<crate::EngineError> + Send + 'static,
    F: FnOnce(&crate::app::App) -> std::result::Result<T, E> + Send + 'static,
{
    let app = app.clone();
    match tokio::task::spawn_blocking(move || f(&app)).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(crate::EngineError::Invalid(format!("a store call was cancelled: {e}")).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenure_core::clock::FakeClock;
    use tenure_store::SqliteStore;

    #[tokio::test(flavor = "current_thread")]
    async fn store_calls_run_off_the_runtime_thread() {
        let clock = Arc::new(FakeClock::at(chrono::DateTime::UNIX_EPOCH));
        let backend: Arc<dyn Backend> = Arc::new(SqliteStore::memory(clock).unwrap());
        let runtime_thread = std::thread::current().id();
        let (thread, counts) = store(&backend, |s| Ok((std::thread::current().id(), s.queue_counts()?))).await.unwrap();
        assert_ne!(thread, runtime_thread, "the call ran on the blocking pool");
        assert!(counts.is_empty());
        let err = store(&backend, |s| s.approval(7)).await.unwrap_err();
        assert_eq!(err.to_string(), "approval 7 not found");
    }
}
