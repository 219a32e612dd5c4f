//! The dashboard at `/ui`: plain ES modules and CSS from `src/ui/`, compiled into the binary
//! (`include_str!`), so the page works offline with no build step and no CDN. The pages
//! themselves hold no data: they call the API from the browser, with the key the user enters
//! (kept in the tab's `sessionStorage`), so these routes are public like `/docs`.
//!
//! - `GET /ui` — redirects to `/ui/`.
//! - `GET /ui/` — the page (`index.html`); views are chosen by the URL fragment
//!   (`#/users`, `#/user/{id}/episodic`, `#/ops`…).
//! - `GET /ui/{file}` — one of the files in [`ASSETS`]; 404 otherwise.
//!
//! Every answer carries a Content-Security-Policy that allows scripts, styles and requests
//! from this origin only, and no inline script: stored text that reached the page as HTML
//! still could not run (the pages never insert it as HTML: `textContent` only).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// Where the dashboard is served.
pub const UI_PATH: &str = "/ui";

/// The dashboard's files: (name under `/ui/`, content type, content).
pub const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../ui/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/dom.js"),
    ),
    (
        "views.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/views.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../ui/style.css"),
    ),
];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `/ui`, `/ui/` and `/ui/{file}`, for any router state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|| async { asset("index.html") }))
        .route(
            "/ui/{file}",
            get(|Path(file): Path<String>| async move { asset(&file) }),
        )
}

fn asset(name: &str) -> Response {
    let Some((_, ctype, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return crate::api::ApiError::NotFound(format!("the dashboard has no file {name:?}"))
            .into_response();
    };
    let mut r = (StatusCode::OK, *body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}
