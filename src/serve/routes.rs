//! Request routing: `GET`/`HEAD` on `/health`, `/ready` and `/metrics`; 404 for any
//! other path, 405 for any other method. The request body is never read.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

use super::probes;
use super::state::State;
use crate::observe;

/// The body type of every response.
pub(super) type Body = Full<Bytes>;

#[derive(Debug, Clone, Copy)]
enum Route {
    Health,
    Ready,
    Metrics,
}

/// Answers one request. Never panics, whatever the request.
pub(super) async fn handle<B>(state: &State, request: Request<B>) -> Response<Body> {
    let route = match request.uri().path() {
        "/health" => Route::Health,
        "/ready" => Route::Ready,
        "/metrics" => Route::Metrics,
        _ => return text(StatusCode::NOT_FOUND, "not found\n"),
    };
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match route {
        Route::Health => json(probes::health(state)),
        Route::Ready => json(probes::ready(state).await),
        Route::Metrics => respond(
            StatusCode::OK,
            observe::CONTENT_TYPE,
            state.exporter.render().into_bytes(),
        ),
    }
}

fn json((status, body): (StatusCode, Value)) -> Response<Body> {
    let mut bytes = body.to_string().into_bytes();
    bytes.push(b'\n');
    respond(status, "application/json", bytes)
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    respond(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
