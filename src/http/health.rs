use actix_web::{web, HttpResponse};

use super::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// Ready only when logins can start (discovery loaded) and sessions can be read (store answers),
/// and not once a shutdown has begun: from the signal on, the load balancer is told to move on
/// while the listeners still serve what it sends meanwhile.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.is_shutting_down() {
        return HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("not ready: shutting down\n");
    }
    let provider = state.providers.all_ready();
    let store = state.store.ping().await;
    match (provider, store) {
        (true, Ok(())) => HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n"),
        (provider, store) => {
            let mut reasons = Vec::new();
            if !provider {
                reasons.push("identity provider discovery not loaded".to_string());
            }
            if let Err(err) = store {
                reasons.push(err.to_string());
            }
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body(format!("not ready: {}\n", reasons.join("; ")))
        }
    }
}
