//! The two auth checks are answered ahead of the router (`App::wrap_fn`): a GET or HEAD of
//! `/oauth2/auth` or `/oauth2/forward-auth` goes straight to [`auth::checked`], everything
//! else (other methods too, which the router answers with 405) is routed as usual.
//!
//! Why: on a cached check, walking the routes, the method guards and the handler's extractors
//! were 8 % of portcullis' instructions (callgrind), on the request a proxy sends for every
//! visit. The routes stay registered, so the answers are the same either way.

use std::future::Future;

use actix_web::body::BoxBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use futures_util::future::LocalBoxFuture;

use super::auth::{self, Mode};
use super::AppState;

pub const AUTH_PATH: &str = "/oauth2/auth";
pub const FORWARD_AUTH_PATH: &str = "/oauth2/forward-auth";

/// Which check a request is, if the router would send it to one: the exact path (the router
/// matches no other spelling of it either) and GET or HEAD.
pub fn check_of(method: &Method, path: &str) -> Option<Mode> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    match path {
        AUTH_PATH => Some(Mode::Status),
        FORWARD_AUTH_PATH => Some(Mode::Redirect),
        _ => None,
    }
}

async fn checked(req: ServiceRequest, state: web::Data<AppState>, mode: Mode) -> ServiceResponse {
    let (req, _payload) = req.into_parts();
    let response = auth::checked(&req, &state, mode)
        .await
        .unwrap_or_else(HttpResponse::from_error);
    ServiceResponse::new(req, response)
}

enum Next<F> {
    Routed(F),
    Checked(LocalBoxFuture<'static, ServiceResponse<BoxBody>>),
}

pub fn middleware<S>(
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
    S::Future: 'static,
{
    let check = check_of(req.method(), req.path())
        .and_then(|mode| Some((mode, req.app_data::<web::Data<AppState>>()?.clone())));
    let next = match check {
        // Boxed, as the router boxes a handler's future: the check's future is a kilobyte, and
        // the dispatcher moves the middleware's future before it pins it.
        Some((mode, state)) => Next::Checked(Box::pin(checked(req, state, mode))),
        None => Next::Routed(service.call(req)),
    };
    async move {
        match next {
            Next::Routed(routed) => routed.await,
            Next::Checked(checked) => Ok(checked.await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_get_or_head_of_an_auth_path_skips_the_router() {
        let cases: &[(Method, &str, Option<Mode>)] = &[
            (Method::GET, "/oauth2/auth", Some(Mode::Status)),
            (Method::HEAD, "/oauth2/auth", Some(Mode::Status)),
            (Method::GET, "/oauth2/forward-auth", Some(Mode::Redirect)),
            (Method::HEAD, "/oauth2/forward-auth", Some(Mode::Redirect)),
            (Method::POST, "/oauth2/auth", None),
            (Method::PUT, "/oauth2/forward-auth", None),
            (Method::OPTIONS, "/oauth2/auth", None),
            (Method::GET, "/oauth2/auth/", None),
            (Method::GET, "/oauth2/Auth", None),
            (Method::GET, "/oauth2/%61uth", None),
            (Method::GET, "//oauth2/auth", None),
            (Method::GET, "/oauth2/start", None),
            (Method::GET, "/", None),
        ];
        for (method, path, want) in cases {
            assert_eq!(check_of(method, path), *want, "{method} {path}");
        }
    }
}
