//! The resident report form page the hub serves (`/report`, compound pre-selected by
//! `?compound=`) and a printable QR code per compound that opens it, as PNG and SVG. The
//! codes are public: they only carry the page's address and a compound id that is on
//! the notice board anyway.

use crate::error::ApiError;
use crate::params::id_param;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// Smallest side of a rendered code, in pixels: prints sharp at A6 and scans from a metre.
const MIN_SIDE: u32 = 600;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `/report` and its script.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/report",
            get(|| async { page("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/report/report.js",
            get(|| async { page("text/javascript; charset=utf-8", SCRIPT) }),
        )
}

const PAGE: &str = include_str!("../assets/report.html");
const SCRIPT: &str = include_str!("../assets/report.js");

fn page(ty: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
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
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The address the code opens: this hub as the client reached it (`Host`, and https when
/// a proxy says `X-Forwarded-Proto: https`), `/report?compound=<id>`.
fn form_url(headers: &HeaderMap, compound: &str) -> Result<String, ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .ok_or_else(|| ApiError::BadRequest("Host: a host name (and port) is required".into()))?;
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let scheme = if https { "https" } else { "http" };
    Ok(format!("{scheme}://{host}/report?compound={compound}"))
}

fn code_for(s: &AppState, headers: &HeaderMap, id: &str) -> Result<QrCode, ApiError> {
    id_param("id", id)?;
    if !s.registry.directory().compounds.contains_key(id) {
        return Err(ApiError::NotFound(format!("compound `{id}` not found")));
    }
    let url = form_url(headers, id)?;
    // Level M survives a smudged or partly torn notice.
    QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)
        .map_err(|e| ApiError::Internal(format!("qr code: {e}")))
}

fn image_reply(ty: &'static str, body: Vec<u8>, id: &str, ext: &str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"report-{id}.{ext}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// A printable QR code (PNG) that opens the report form with the compound pre-selected
/// (no token).
#[utoipa::path(get, path = "/api/v1/compounds/{id}/report-qr.png", tag = "public",
    params(("id" = String, Path, description = "compound id")),
    responses((status = 200, description = "PNG image", content_type = "image/png", body = Vec<u8>),
        (status = 400), (status = 404, description = "unknown compound")))]
pub(crate) async fn qr_png(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let code = code_for(&s, &headers, &id)?;
    let img = code
        .render::<image::Luma<u8>>()
        .min_dimensions(MIN_SIDE, MIN_SIDE)
        .build();
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageLuma8(img)
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| ApiError::Internal(format!("png: {e}")))?;
    Ok(image_reply("image/png", png.into_inner(), &id, "png"))
}

/// The same QR code as SVG, for print shops (no token).
#[utoipa::path(get, path = "/api/v1/compounds/{id}/report-qr.svg", tag = "public",
    params(("id" = String, Path, description = "compound id")),
    responses((status = 200, description = "SVG image", content_type = "image/svg+xml", body = String),
        (status = 400), (status = 404, description = "unknown compound")))]
pub(crate) async fn qr_svg(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let code = code_for(&s, &headers, &id)?;
    let svg = code
        .render::<svg::Color>()
        .min_dimensions(MIN_SIDE, MIN_SIDE)
        .build();
    Ok(image_reply("image/svg+xml", svg.into_bytes(), &id, "svg"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_url_is_this_hub_as_the_client_reached_it() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("hub.example:8080"));
        assert_eq!(
            form_url(&h, "cmp-1").ok().as_deref(),
            Some("http://hub.example:8080/report?compound=cmp-1")
        );
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(form_url(&h, "cmp-1").is_ok_and(|u| u.starts_with("https://")));
        h.insert(header::HOST, HeaderValue::from_static("evil\"><script"));
        assert!(matches!(
            form_url(&h, "cmp-1"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
