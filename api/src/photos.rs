//! Photos a crew attaches to a ticket: JPEG or PNG up to 10 MiB, checked by content (the
//! magic bytes and a real decode, never the name or the declared type), kept on disk
//! under `api.photo_dir` as `<ticket>/<sha256>.<jpg|png>` with a 320 px JPEG thumbnail
//! next to it, and recorded in the ticket's audit trail by SHA-256. A refused upload
//! changes nothing and is counted in `steward_api_photo_rejects_total` by reason.

use crate::auth::Principal;
use crate::error::{blocking, ApiError};
use crate::state::AppState;
use crate::tickets::ticket_id;
use axum::extract::multipart::MultipartError;
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Cursor;
use steward_estate::Role;
use utoipa::ToSchema;

/// Largest photo accepted.
pub const MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;
/// Body limit of the upload route: the photo and the multipart framing around it. A body
/// beyond it is cut off by the server and refused as too large.
pub const UPLOAD_BODY_LIMIT: usize = MAX_PHOTO_BYTES + 256 * 1024;
const THUMB_PX: u32 = 320;
const ACTION: &str = "photo";

/// One photo of a ticket. Fields in alphabetical order.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhotoInfo {
    /// Who attached it (as the audit trail names them).
    pub actor: String,
    /// image/jpeg or image/png.
    pub content_type: String,
    pub sha256: String,
    /// Thumbnail (JPEG, at most 320 px a side).
    pub thumb_url: String,
    /// When it was attached, ms since the epoch.
    pub ts_ms: i64,
    pub url: String,
}

/// Reply of `GET /api/v1/tickets/{id}/photos`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhotoList {
    /// Oldest first.
    pub photos: Vec<PhotoInfo>,
}

/// Reply of `POST /api/v1/tickets/{id}/photos`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhotoUploaded {
    /// True when the ticket already had this very photo (an upload sent again after a
    /// lost connection): nothing was added.
    pub duplicate: bool,
    pub height: u32,
    pub photo: PhotoInfo,
    pub width: u32,
}

/// The upload form as documented (multipart/form-data).
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct PhotoForm {
    /// The image: JPEG or PNG, at most 10 MiB (a phone's HEIC is converted to JPEG by the
    /// crew app before upload).
    #[schema(value_type = String, format = Binary)]
    photo: Vec<u8>,
    /// Who took it (crew member); the token's name when absent.
    actor: Option<String>,
}

fn reject(s: &AppState, reason: &'static str, e: ApiError) -> ApiError {
    s.api_metrics
        .photo_rejects
        .get_or_create(&crate::metrics::PhotoRejectLabels { reason })
        .inc();
    e
}

fn too_large() -> ApiError {
    ApiError::TooLarge(format!(
        "photo: larger than the {} MiB limit",
        MAX_PHOTO_BYTES / (1024 * 1024)
    ))
}

/// The image type by its first bytes: `Ok` for JPEG and PNG, else a 415 naming what the
/// bytes look like.
fn sniff(bytes: &[u8]) -> Result<(image::ImageFormat, &'static str, &'static str), ApiError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok((image::ImageFormat::Jpeg, "image/jpeg", "jpg"));
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok((image::ImageFormat::Png, "image/png", "png"));
    }
    let what = match bytes {
        [_, _, _, _, b'f', b't', b'y', b'p', b'h', b'e', b'i', ..]
        | [_, _, _, _, b'f', b't', b'y', b'p', b'm', b'i', b'f', b'1', ..] => {
            "HEIC/HEIF (convert it to JPEG first; the crew app does)"
        }
        [b'G', b'I', b'F', b'8', ..] => "GIF",
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => "WebP",
        [b'%', b'P', b'D', b'F', ..] => "PDF",
        _ => "not an image",
    };
    Err(ApiError::UnsupportedType(format!(
        "photo: expected a JPEG or PNG image, got {what}"
    )))
}

/// A checked photo, ready to store.
struct Checked {
    format_ext: &'static str,
    content_type: &'static str,
    sha256: String,
    width: u32,
    height: u32,
    thumb: Vec<u8>,
}

/// Decode the image for real (a truncated or forged file fails here) within memory
/// limits, and make its thumbnail.
fn check(bytes: &[u8]) -> Result<Checked, (&'static str, ApiError)> {
    let (format, content_type, format_ext) = sniff(bytes).map_err(|e| ("unsupported_type", e))?;
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let name = if format_ext == "jpg" { "JPEG" } else { "PNG" };
    // The JPEG decoder pads a cut-off file with grey rather than fail; a whole JPEG ends
    // with its end-of-image marker (some cameras add padding after it).
    let end = bytes.iter().rposition(|b| *b != 0).unwrap_or(0);
    if format_ext == "jpg" && (end < 1 || bytes[end - 1..=end] != [0xFF, 0xD9]) {
        return Err((
            "undecodable",
            ApiError::BadRequest(
                "photo: not a valid JPEG image (cut off: no end-of-image marker)".into(),
            ),
        ));
    }
    let img = reader.decode().map_err(|e| {
        (
            "undecodable",
            ApiError::BadRequest(format!("photo: not a valid {name} image ({e})")),
        )
    })?;
    let mut thumb = Vec::new();
    image::DynamicImage::ImageRgb8(img.thumbnail(THUMB_PX, THUMB_PX).to_rgb8())
        .write_to(&mut Cursor::new(&mut thumb), image::ImageFormat::Jpeg)
        .map_err(|e| ("undecodable", ApiError::Internal(format!("thumbnail: {e}"))))?;
    Ok(Checked {
        format_ext,
        content_type,
        sha256: hex::encode(Sha256::digest(bytes)),
        width: img.width(),
        height: img.height(),
        thumb,
    })
}

/// Write `bytes` to `path` through a temporary file and a rename, so a crash never
/// leaves half a photo under its final name.
fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn info(id: i64, sha: &str, content_type: &str, actor: &str, ts_ms: i64) -> PhotoInfo {
    let url = format!("/api/v1/tickets/{id}/photos/{sha}");
    PhotoInfo {
        actor: actor.to_string(),
        content_type: content_type.to_string(),
        sha256: sha.to_string(),
        thumb_url: format!("{url}/thumb"),
        ts_ms,
        url,
    }
}

/// The photo file and the thumbnail in `note` ("photo <sha> (image/jpeg, ...)").
fn parse_note(note: &str) -> Option<(&str, &str)> {
    let rest = note.strip_prefix("photo ")?;
    let (sha, rest) = rest.split_once(" (")?;
    let ty = rest.split(',').next()?;
    Some((sha, ty))
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::BadRequest(format!("photo: bad multipart body ({})", e.body_text()))
    }
}

/// Read the form: the `photo` file (at most [`MAX_PHOTO_BYTES`]) and the optional actor.
async fn read_form(mut form: Multipart) -> Result<(Option<Vec<u8>>, String), ApiError> {
    let (mut photo, mut actor) = (None, String::new());
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("photo") => {
                let mut buf = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if buf.len() + chunk.len() > MAX_PHOTO_BYTES {
                        return Err(too_large());
                    }
                    buf.extend_from_slice(&chunk);
                }
                photo = Some(buf);
            }
            Some("actor") => {
                actor = field.text().await.map_err(multipart_error)?;
            }
            _ => {}
        }
    }
    Ok((photo, actor))
}

/// Attach a photo to a ticket (admin; crew for its station's tickets).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/photos", tag = "tickets",
    params(("id" = i64, Path, description = "ticket id")),
    request_body(content = PhotoForm, content_type = "multipart/form-data"),
    responses((status = 201, description = "stored; its SHA-256 is in the audit trail", body = PhotoUploaded),
        (status = 200, description = "the ticket already had this photo", body = PhotoUploaded),
        (status = 400, description = "no `photo` field, or the file does not decode as the image it claims to be"),
        (status = 401), (status = 403), (status = 404),
        (status = 413, description = "larger than 10 MiB"),
        (status = 415, description = "not a JPEG or PNG (names what it is)")),
    security(("bearer" = [])))]
pub(crate) async fn upload_photo(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
    form: Multipart,
) -> Result<Response, ApiError> {
    who.require(&[Role::Crew])?;
    let id = ticket_id(&id)?;
    let desk = s.tickets.clone();
    let t = blocking(move || Ok(desk.store().ticket(id)?)).await?;
    who.check(who.can_see_ticket(&t), &format!("ticket {id}"))?;
    let (photo, actor) = match read_form(form).await {
        Ok(f) => f,
        Err(e @ ApiError::TooLarge(_)) => return Err(reject(&s, "too_large", e)),
        Err(e) => return Err(reject(&s, "no_file", e)),
    };
    let Some(photo) = photo.filter(|p| !p.is_empty()) else {
        return Err(reject(
            &s,
            "no_file",
            ApiError::BadRequest("photo: missing (send the image as the `photo` field)".into()),
        ));
    };
    let actor = actor.trim();
    if actor.chars().count() > 64 || actor.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "actor: at most 64 printable characters".into(),
        ));
    }
    let actor = match (actor.is_empty(), who.token_id) {
        (true, _) => who.name.clone(),
        (false, None) => actor.to_string(),
        (false, Some(_)) => format!("{actor} [{}]", who.name),
    };
    let checked = match blocking(move || Ok(check(&photo).map(|c| (c, photo)))).await? {
        Ok(c) => c,
        Err((reason, e)) => return Err(reject(&s, reason, e)),
    };
    let (c, photo) = checked;
    let (sha, content_type, width, height) = (c.sha256.clone(), c.content_type, c.width, c.height);
    let dir = s.photos.ticket_dir(id);
    let desk = s.tickets.clone();
    let actor2 = actor.clone();
    let (duplicate, ts_ms) = blocking(move || {
        let file = dir.join(format!("{}.{}", c.sha256, c.format_ext));
        let now = desk.now_ms();
        if file.exists() {
            return Ok((true, now));
        }
        let io = |e: std::io::Error| ApiError::Internal(format!("photo store: {e}"));
        std::fs::create_dir_all(&dir).map_err(io)?;
        write_atomic(&dir.join(format!("{}.thumb.jpg", c.sha256)), &c.thumb).map_err(io)?;
        write_atomic(&file, &photo).map_err(io)?;
        let note = format!(
            "photo {} ({}, {}x{}, {} bytes)",
            c.sha256,
            c.content_type,
            c.width,
            c.height,
            photo.len()
        );
        desk.store().annotate(id, &actor2, ACTION, &note, now)?;
        Ok((false, now))
    })
    .await?;
    let status = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = PhotoUploaded {
        duplicate,
        height,
        photo: info(id, &sha, content_type, &actor, ts_ms),
        width,
    };
    Ok((status, Json(body)).into_response())
}

/// The photos of a ticket, from its audit trail (scoped as the ticket).
#[utoipa::path(get, path = "/api/v1/tickets/{id}/photos", tag = "tickets",
    params(("id" = i64, Path, description = "ticket id")),
    responses((status = 200, description = "the ticket's photos, oldest first", body = PhotoList),
        (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn list_photos(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PhotoList>, ApiError> {
    who.require(&[Role::Manager, Role::Crew])?;
    let id = ticket_id(&id)?;
    let desk = s.tickets.clone();
    let detail = blocking(move || Ok(desk.store().get(id)?)).await?;
    who.check(who.can_see_ticket(&detail.ticket), &format!("ticket {id}"))?;
    let mut photos: Vec<PhotoInfo> = Vec::new();
    for r in detail.audit.iter().filter(|r| r.action == ACTION) {
        if let Some((sha, ty)) = parse_note(&r.note) {
            if !photos.iter().any(|p| p.sha256 == sha) {
                photos.push(info(id, sha, ty, &r.actor, r.ts_ms));
            }
        }
    }
    Ok(Json(PhotoList { photos }))
}

async fn serve(
    who: Principal,
    s: AppState,
    id: String,
    sha: String,
    thumb: bool,
) -> Result<Response, ApiError> {
    who.require(&[Role::Manager, Role::Crew])?;
    let id = ticket_id(&id)?;
    if sha.len() != 64
        || !sha
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ApiError::BadRequest(
            "sha: expected 64 lowercase hex digits".into(),
        ));
    }
    let desk = s.tickets.clone();
    let dir = s.photos.ticket_dir(id);
    let (t, found) = blocking(move || {
        let t = desk.store().ticket(id)?;
        let names: &[(&str, &str)] = if thumb {
            &[("thumb.jpg", "image/jpeg")]
        } else {
            &[("jpg", "image/jpeg"), ("png", "image/png")]
        };
        let found = names.iter().find_map(|(ext, ty)| {
            std::fs::read(dir.join(format!("{sha}.{ext}")))
                .ok()
                .map(|b| (b, *ty))
        });
        Ok((t, found))
    })
    .await?;
    who.check(who.can_see_ticket(&t), &format!("ticket {id}"))?;
    let (bytes, ty) =
        found.ok_or_else(|| ApiError::NotFound(format!("ticket {id}: no such photo")))?;
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Named by content: the bytes behind a name never change.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    Ok(r)
}

/// One photo as uploaded (scoped as the ticket).
#[utoipa::path(get, path = "/api/v1/tickets/{id}/photos/{sha}", tag = "tickets",
    params(("id" = i64, Path, description = "ticket id"),
        ("sha" = String, Path, description = "the photo's SHA-256, hex")),
    responses((status = 200, description = "the image (image/jpeg or image/png)", body = String,
            content_type = "image/jpeg"),
        (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn get_photo(
    who: Principal,
    State(s): State<AppState>,
    Path((id, sha)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    serve(who, s, id, sha, false).await
}

/// A photo's thumbnail: JPEG, at most 320 px a side (scoped as the ticket).
#[utoipa::path(get, path = "/api/v1/tickets/{id}/photos/{sha}/thumb", tag = "tickets",
    params(("id" = i64, Path, description = "ticket id"),
        ("sha" = String, Path, description = "the photo's SHA-256, hex")),
    responses((status = 200, description = "image/jpeg", body = String, content_type = "image/jpeg"),
        (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn get_thumb(
    who: Principal,
    State(s): State<AppState>,
    Path((id, sha)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    serve(who, s, id, sha, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 90]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
            .expect("encode");
        out
    }

    #[test]
    fn a_real_jpeg_passes_with_a_small_thumbnail() {
        let c = check(&jpeg(800, 600)).expect("accepted");
        assert_eq!(
            (c.width, c.height, c.content_type),
            (800, 600, "image/jpeg")
        );
        let t = image::load_from_memory(&c.thumb).expect("thumb decodes");
        assert_eq!((t.width(), t.height()), (320, 240));
    }

    #[test]
    fn forged_and_foreign_files_are_named() {
        let mut cut = jpeg(64, 64);
        cut.truncate(40);
        for (bytes, reason, needle) in [
            (b"hello, world".to_vec(), "unsupported_type", "not an image"),
            (b"GIF89a....".to_vec(), "unsupported_type", "GIF"),
            (
                b"\0\0\0\x18ftypheic....".to_vec(),
                "unsupported_type",
                "HEIC",
            ),
            (cut, "undecodable", "not a valid JPEG"),
        ] {
            match check(&bytes) {
                Err((r, e)) => {
                    assert_eq!(r, reason);
                    assert!(e.to_string().contains(needle), "{e}");
                }
                Ok(_) => panic!("{needle}: accepted"),
            }
        }
    }

    #[test]
    fn audit_notes_give_back_the_photo() {
        assert_eq!(
            parse_note("photo abc (image/png, 1x1, 9 bytes)"),
            Some(("abc", "image/png"))
        );
        assert_eq!(parse_note("assigned to kim"), None);
    }
}
