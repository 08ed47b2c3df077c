//! Web assets: the agent desk and the customer web chat, embedded in the binary.
//!
//! This crate owns the files under `assets/` (plain HTML, CSS and ES modules: no npm, no build
//! step) and [`get`], which returns one of them with its MIME type. It does not route HTTP: the
//! `http` crate decides which URL serves which file and adds the security headers (the pages
//! rely on its Content-Security-Policy forbidding inline scripts and styles, so they have none).
//!
//! # Layout
//! ```text
//! assets/agent/index.html  agent.js  agent.css    the agent desk   (page at /agent)
//! assets/chat/index.html   chat.js   chat.css     the web chat     (page at /chat/{channel_id})
//! assets/shared/render.js                         DOM helpers and Content rendering for both
//! ```
//!
//! The pages load their files by absolute URL under `/static/` (`/static/agent/agent.js`,
//! `/static/shared/render.js`), so the server maps:
//!
//! | request | file |
//! |---|---|
//! | `GET /agent` | `get("agent/index.html")` |
//! | `GET /chat/{channel_id}` | `get("chat/index.html")` (the page reads the id from its URL) |
//! | `GET /static/{*path}` | `get(path)`, 404 when `None` |
//!
//! # Editing without rebuilding
//! In debug builds rust-embed reads each file from disk on every request (from this crate's
//! `assets/` folder, by absolute path), so a designer can edit HTML/CSS/JS and reload the
//! browser without recompiling. Release builds embed the bytes at compile time, so the binary
//! serves them with no files next to it. (A debug binary copied to another machine therefore
//! finds no assets; ship release builds.)
//!
//! # Untrusted content
//! Customers send `<script>` and `<img onerror>`: the JavaScript puts every piece of message
//! content into the page with `textContent`/`createElement` only. The test
//! `no_asset_script_parses_html` fails if an HTML-parsing sink appears in any script.

use std::borrow::Cow;

/// Every file under `assets/`, embedded in release builds and read from disk in debug builds.
#[derive(rust_embed::RustEmbed)]
#[folder = "assets/"]
pub struct Assets;

/// Returns the bytes and the `Content-Type` of the asset at `path` (relative to `assets/`,
/// e.g. `"agent/agent.js"`; a leading `/` is ignored), or `None` when there is no such file.
///
/// Paths with `..`, backslashes or empty segments are refused outright, so a request can't
/// climb out of the folder even in debug builds, where files are read from disk.
/// Text types carry `; charset=utf-8`.
pub fn get(path: &str) -> Option<(Cow<'static, [u8]>, String)> {
    let path = path.strip_prefix('/').unwrap_or(path);
    if path.is_empty()
        || path.contains('\\')
        || path.contains('\0')
        || path
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return None;
    }
    let file = Assets::get(path)?;
    Some((file.data, content_type(path)))
}

/// The MIME type for a file name, with a charset for text so browsers never guess.
fn content_type(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let is_text = mime.type_() == mime_guess::mime::TEXT
        || mime.subtype() == mime_guess::mime::JAVASCRIPT
        || mime.subtype() == mime_guess::mime::JSON;
    if is_text {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_their_scripts_and_styles_are_embedded_with_the_right_type() {
        let cases = [
            ("agent/index.html", "text/html; charset=utf-8"),
            ("agent/agent.js", "text/javascript; charset=utf-8"),
            ("agent/agent.css", "text/css; charset=utf-8"),
            ("chat/index.html", "text/html; charset=utf-8"),
            ("chat/chat.js", "text/javascript; charset=utf-8"),
            ("chat/chat.css", "text/css; charset=utf-8"),
            ("shared/render.js", "text/javascript; charset=utf-8"),
            ("/agent/agent.js", "text/javascript; charset=utf-8"),
        ];
        for (path, mime) in cases {
            let (bytes, got) = get(path).unwrap_or_else(|| panic!("{path} is not embedded"));
            assert!(!bytes.is_empty(), "{path} is empty");
            assert_eq!(got, mime, "MIME type of {path}");
        }
    }

    #[test]
    fn unknown_and_escaping_paths_are_refused() {
        let cases = [
            ("", "empty"),
            ("agent/missing.js", "no such file"),
            ("../Cargo.toml", "climbs out of assets/"),
            ("agent/../../Cargo.toml", "climbs out in the middle"),
            ("agent/./index.html", "dot segment"),
            ("agent//index.html", "empty segment"),
            ("agent\\index.html", "backslash"),
            ("agent", "a folder"),
        ];
        for (path, why) in cases {
            assert!(get(path).is_none(), "{path:?} must be refused: {why}");
        }
    }

    #[test]
    fn pages_reference_only_files_that_exist() {
        for page in ["agent/index.html", "chat/index.html"] {
            let html = text(page);
            for attr in ["src=\"", "href=\""] {
                for part in html.split(attr).skip(1) {
                    let url = part.split('"').next().expect("split yields a first part");
                    if let Some(asset) = url.strip_prefix("/static/") {
                        assert!(get(asset).is_some(), "{page} links to missing {url}");
                    }
                }
            }
        }
        for script in script_paths() {
            for part in text(&script).split("from \"/static/").skip(1) {
                let asset = part.split('"').next().expect("split yields a first part");
                assert!(get(asset).is_some(), "{script} imports missing {asset}");
            }
        }
    }

    /// Customer content must never be parsed as HTML (architecture.md, security model).
    #[test]
    fn no_asset_script_parses_html() {
        let sinks = [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "createContextualFragment",
            "DOMParser",
        ];
        let scripts = script_paths();
        assert!(
            scripts.len() >= 3,
            "expected the agent, chat and shared scripts, found {scripts:?}"
        );
        for path in scripts {
            let js = text(&path);
            for sink in sinks {
                assert!(
                    !js.contains(sink),
                    "{path} uses `{sink}`: build elements with createElement and set textContent instead"
                );
            }
        }
    }

    /// The server's CSP allows no inline script or style.
    #[test]
    fn pages_have_no_inline_scripts_styles_or_handlers() {
        for page in Assets::iter().filter(|p| p.ends_with(".html")) {
            let html = text(&page);
            assert!(!html.contains("style="), "{page} has a style= attribute");
            assert!(!html.contains("<style"), "{page} has a <style> block");
            assert!(
                !has_inline_handler(&html),
                "{page} has an inline on* event handler attribute"
            );
            for part in html.split("<script").skip(1) {
                let (tag, rest) = part.split_once('>').expect("script tag closes");
                assert!(tag.contains("src="), "{page} has an inline <script>");
                assert!(
                    rest.trim_start().starts_with("</script>"),
                    "{page} has a <script> with a body"
                );
            }
        }
    }

    /// Finds `on<letters>=` after whitespace, i.e. an `onclick=`-style attribute.
    fn has_inline_handler(html: &str) -> bool {
        let lower = html.to_ascii_lowercase();
        lower.match_indices("on").any(|(i, _)| {
            let before_ws = lower[..i].ends_with(|c: char| c.is_ascii_whitespace());
            let name_len = lower[i + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            before_ws && name_len > 0 && lower[i + 2 + name_len..].starts_with('=')
        })
    }

    #[test]
    fn inline_handler_check_sees_handlers_but_not_prose() {
        assert!(has_inline_handler("<img src=x onerror=\"alert(1)\">"));
        assert!(has_inline_handler("<button\n  onClick=\"go()\">"));
        assert!(!has_inline_handler(
            "<p>Select a conversation on the left.</p>"
        ));
        assert!(!has_inline_handler(
            "<input autocomplete=\"one-time-code\">"
        ));
    }

    fn script_paths() -> Vec<String> {
        Assets::iter()
            .filter(|p| p.ends_with(".js") || p.ends_with(".mjs"))
            .map(|p| p.into_owned())
            .collect()
    }

    fn text(path: &str) -> String {
        let (bytes, _) = get(path).unwrap_or_else(|| panic!("{path} is not embedded"));
        String::from_utf8(bytes.into_owned()).unwrap_or_else(|_| panic!("{path} is not UTF-8"))
    }
}
