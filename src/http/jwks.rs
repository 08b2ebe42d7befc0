//! `GET /oauth2/jwks`: the public keys apps verify `X-Auth-Request-Jwt` with (`UPSTREAM_JWT`).

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::AppState;

/// The JWKS, built once at startup; 404 with `UPSTREAM_JWT` off, as for any path portcullis
/// does not serve. Apps may keep it five minutes: a new key is listed before the old one goes
/// (see the README's rotation), and the usual JWKS clients refetch on an unknown `kid`.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let Some(assertions) = &state.assertions else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found: UPSTREAM_JWT is off");
    };
    let mut response =
        HttpResponse::with_body(StatusCode::OK, assertions.jwks()).map_into_boxed_body();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    response
}
