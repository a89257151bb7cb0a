//! The crew app at `/crew/`: a phone-first installable web app (manifest, icons, a
//! service worker caching the app shell) for the crews in the field. Plain ES modules
//! compiled into the binary like the dashboard, sharing its message catalogue; it calls
//! the same REST API with the crew's token.

use crate::error::ApiError;
use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the crew app: name, content type, body.
const ASSETS: [(&str, &str, &[u8]); 12] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../assets/crew/index.html"),
    ),
    (
        "crew.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/crew/crew.css"),
    ),
    ("crew.js", JS, include_bytes!("../assets/crew/crew.js")),
    (
        "actions.js",
        JS,
        include_bytes!("../assets/crew/actions.js"),
    ),
    ("queue.js", JS, include_bytes!("../assets/crew/queue.js")),
    // The dashboard's message catalogue (one place for every string of both apps), its
    // API client and DOM helpers, and its history chart.
    ("i18n.js", JS, include_bytes!("../assets/i18n.js")),
    ("core.js", JS, include_bytes!("../assets/core.js")),
    ("chart.js", JS, include_bytes!("../assets/chart.js")),
    ("sw.js", JS, include_bytes!("../assets/crew/sw.js")),
    (
        "manifest.webmanifest",
        "application/manifest+json",
        include_bytes!("../assets/crew/manifest.webmanifest"),
    ),
    (
        "icon-192.png",
        "image/png",
        include_bytes!("../assets/crew/icon-192.png"),
    ),
    (
        "icon-512.png",
        "image/png",
        include_bytes!("../assets/crew/icon-512.png"),
    ),
];

/// As the dashboard's, plus `blob:` images (photos are fetched with the token and shown
/// from memory) and the manifest and service worker from the same origin.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data: blob:; connect-src 'self'; worker-src 'self'; \
                   manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
                   form-action 'none'";

pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/crew", get(|| async { Redirect::permanent("/crew/") }))
        .route("/crew/", get(|| async { asset("index.html") }))
        .route("/crew/{file}", get(crew_file))
}

async fn crew_file(Path(file): Path<String>) -> Response {
    asset(&file)
}

fn asset(file: &str) -> Response {
    let Some((_, ty, body)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return ApiError::NotFound("no such crew app file".into()).into_response();
    };
    let mut r = body.to_vec().into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The service worker serves the shell offline; online, each load revalidates so a new
    // hub's app reaches the phone.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
