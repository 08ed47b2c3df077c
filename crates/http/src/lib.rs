//! Switchboard's HTTP surface: webhooks, the JSON API, websockets and the embedded pages.
//!
//! [`Server::build`] opens the runtime, binds the listener (port 0 works, for tests) and
//! returns; [`Server::run_until_stopped`] serves until the shutdown token fires, then stops
//! the workers at a safe point. Each route module owns one area and exposes `router()`.

pub mod error;
pub mod extract;
pub mod routes;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use switchboard_app::{App, Config};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Content-Security-Policy of every answer: scripts and styles only from this server, no
/// framing, websockets back to this server only.
pub const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Builds the router over a runtime.
pub fn router(app: App) -> Router {
    let limits = app.config.limits.clone();
    let header = |name: &'static str, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    };
    Router::new()
        .merge(routes::health::router())
        .merge(routes::auth::router())
        .merge(routes::conversations::router())
        .merge(routes::routing::router())
        .merge(routes::contacts::router())
        .merge(routes::media::router())
        .merge(routes::attachments::router())
        .merge(routes::demo::router())
        .merge(routes::users::router())
        .merge(routes::security::router())
        .merge(routes::privacy::router())
        .merge(routes::channels::router())
        .merge(routes::hooks::router())
        .merge(routes::events::router())
        .merge(routes::webchat::router())
        .merge(routes::assets::router())
        .fallback(|| async { error::ApiError::not_found("route") })
        .layer(DefaultBodyLimit::max(limits.max_api_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(limits.request_timeout_secs.max(1)),
        ))
        .layer(header("content-security-policy", CSP))
        .layer(header("x-content-type-options", "nosniff"))
        .layer(header("x-frame-options", "DENY"))
        .layer(header("referrer-policy", "same-origin"))
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}

/// A built server, listening but not yet serving.
pub struct Server {
    app: App,
    listener: TcpListener,
    addr: SocketAddr,
}

impl Server {
    /// Opens storage, runs migrations and binds `config.listen`.
    pub async fn build(config: Config) -> anyhow::Result<Server> {
        let listen = config.listen;
        let app = App::open(config).await?;
        Self::with_app(app, listen).await
    }

    /// Binds a server around an existing runtime (tests that inject transports).
    pub async fn with_app(app: App, listen: SocketAddr) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(listen).await.with_context(|| {
            format!(
                "binding {listen} (is another server running there? choose another with --listen)"
            )
        })?;
        let addr = listener.local_addr()?;
        app.set_own_addr(addr);
        Ok(Server {
            app,
            listener,
            addr,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The runtime.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Serves until `shutdown` fires; then stops accepting, lets workers finish what they
    /// hold, and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let workers = self.app.start_workers(shutdown.clone());
        let router = router(self.app.clone());
        let stop = shutdown.clone();
        axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .context("serving HTTP")?;
        shutdown.cancel();
        workers.join().await;
        Ok(())
    }
}
