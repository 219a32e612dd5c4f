//! The OpenAPI 3.1 document of the API, generated from the handlers, served at
//! `GET /openapi.json`, and Swagger UI on it at `GET /docs` (its files are compiled into the
//! binary: the page works offline).
//!
//! Each handler carries a `#[utoipa::path]` annotation with its parameters, body, success
//! answer and the errors it returns itself (400, 404, 409, 422, 429); the route modules
//! register handlers through `utoipa_axum::routes!`, which builds the axum route and the
//! operation from the same annotation, so a route cannot be served without being documented
//! (`tests/openapi.rs` checks that too). What the layers in front of every handler add is
//! documented here, by [`finish`], from the same rules the layers apply:
//!
//! - authentication ([`super::auth`]): every route but [`super::auth::PUBLIC_ROUTES`] needs
//!   `Authorization: Bearer KEY` when keys are configured, and may answer 401 (no key, or an
//!   unknown one; with `WWW-Authenticate: Bearer`) and 403 (a key not allowed there);
//! - the body limit (`max_body_bytes`): every route that takes a body may answer 413.
//!
//! Both documents are public, like the health check: they describe the API's shape, which is
//! the same for every deployment, and hold no user data, keys or configuration.

use axum::Router;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Content, HeaderBuilder, OpenApi as Document, Ref, RefOr, Response, ResponseBuilder,
};
use utoipa_swagger_ui::SwaggerUi;

use super::auth::PUBLIC_ROUTES;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// Where Swagger UI is served (also `/docs/`, and its files under `/docs/…`).
pub const DOCS_PATH: &str = "/docs";
/// The name of the bearer security scheme.
pub const BEARER: &str = "bearer";

/// The document's fixed parts: title, version, description and tags. The paths come from the
/// route modules.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Memory Reflector",
        description = "Memory for conversational AI assistants: a chat backend posts every turn \
            (`POST /api/interactions`); reflection workers turn turns into episodic, semantic and \
            procedural memory; `GET /api/memory/context/{user_id}` assembles context for the next \
            prompt from all four tiers.\n\n\
            Authentication: with `REFLECTOR_API_KEYS` set, every route but the health check \
            needs `Authorization: Bearer KEY` (an admin key, or a key limited to some users); \
            without keys the service is open and listens on loopback only.\n\n\
            Errors are always JSON: `{\"error\": CODE, \"message\": TEXT, \"field\"?: FIELD}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(super::schema::ErrorBody)),
    tags(
        (name = "interactions", description = "Storing turns (Tier 1) and their reflection jobs"),
        (name = "memory", description = "Recall and browsing the four tiers"),
        (name = "editing", description = "Adding, changing and deleting one memory; the audit record"),
        (name = "reflection", description = "Reflection jobs, dead letters, health and queue status"),
        (name = "operations", description = "Metrics"),
    ),
)]
struct ApiDoc;

/// The document before the routes are added.
pub fn base() -> Document {
    ApiDoc::openapi()
}

/// The whole document, as `GET /openapi.json` serves it.
pub fn document() -> Document {
    finish(super::api_routes().into_openapi())
}

/// Add what the layers in front of the handlers do (see the module docs): the bearer
/// security scheme, each operation's security requirement, 401 and 403 on every protected
/// operation, 413 on every operation that takes a body.
pub fn finish(mut doc: Document) -> Document {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API key from `REFLECTOR_API_KEYS` (`reflector key new`). Needed only when \
                     the server has keys configured; admin keys reach every route, user keys \
                     only their users' routes.",
                ))
                .build(),
        ),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let public = PUBLIC_ROUTES.contains(&path.as_str());
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            document_layers(op, public);
        }
    }
    doc
}

fn document_layers(op: &mut Operation, public: bool) {
    let responses = &mut op.responses.responses;
    if public {
        op.security = Some(vec![SecurityRequirement::default()]);
    } else {
        op.security = Some(vec![SecurityRequirement::new::<_, [&str; 0], &str>(
            BEARER,
            [],
        )]);
        let www = HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some("`Bearer realm=\"reflector\"`"))
            .build();
        responses.entry("401".into()).or_insert_with(|| {
            ResponseBuilder::new()
                .description("No API key, or an unknown one (only when keys are configured)")
                .content("application/json", error_content())
                .header("WWW-Authenticate", www)
                .build()
                .into()
        });
        responses
            .entry("403".into())
            .or_insert_with(|| error_response("A valid API key that is not allowed here: a user-limited key on another user's data or on an admin route"));
    }
    if op.request_body.is_some() {
        responses.entry("413".into()).or_insert_with(|| {
            error_response("The body is larger than `max_body_bytes` (default 1 MiB)")
        });
    }
}

fn error_content() -> Content {
    Content::new(Some(Ref::from_schema_name("ErrorBody")))
}

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", error_content())
        .build()
        .into()
}

/// `GET /openapi.json` and Swagger UI at `/docs`, for any router state.
pub fn docs<S: Clone + Send + Sync + 'static>(doc: Document) -> Router<S> {
    SwaggerUi::new(DOCS_PATH).url(OPENAPI_PATH, doc).into()
}
