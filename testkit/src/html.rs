//! Just enough HTML reading to submit the IdP's forms the way a browser
//! without JavaScript would: the first <form>, its action and its inputs.

/// A form found in a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// As written in the page (resolve it against the page URL).
    pub action: String,
    /// Lowercased; "get" when absent, as in browsers.
    pub method: String,
    /// `name`/`value` of each <input> and named <button> with a value, in order.
    pub fields: Vec<(String, String)>,
}

/// The first `<form>` of `html`, if any.
pub fn first_form(html: &str) -> Option<Form> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<form")?;
    let tag_end = start + lower[start..].find('>')?;
    let form_tag = &html[start..=tag_end];
    let end = lower[tag_end..]
        .find("</form")
        .map_or(html.len(), |i| tag_end + i);
    let body = &html[tag_end + 1..end];
    let mut fields = Vec::new();
    let body_lower = body.to_ascii_lowercase();
    let mut cursor = 0;
    while let Some(found) = body_lower[cursor..].find('<') {
        let open = cursor + found;
        let Some(close) = body_lower[open..].find('>').map(|i| open + i) else {
            break;
        };
        let tag = &body[open..=close];
        let tag_lower = &body_lower[open..=close];
        let is_input = tag_lower.starts_with("<input");
        let is_button = tag_lower.starts_with("<button");
        if is_input || is_button {
            let kind = attribute(tag, "type")
                .unwrap_or_default()
                .to_ascii_lowercase();
            if let Some(name) = attribute(tag, "name") {
                let value = attribute(tag, "value");
                // Unnamed or value-less buttons send nothing; checkboxes are not used here.
                if (is_input && kind != "submit") || (is_button && value.is_some()) {
                    fields.push((name, value.unwrap_or_default()));
                }
            }
        }
        cursor = close + 1;
    }
    Some(Form {
        action: attribute(form_tag, "action").unwrap_or_default(),
        method: attribute(form_tag, "method")
            .unwrap_or_else(|| "get".into())
            .to_ascii_lowercase(),
        fields,
    })
}

/// The (entity-decoded) value of attribute `name` in one tag.
pub fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut search = 0;
    while let Some(found) = lower[search..].find(name) {
        let at = search + found;
        search = at + name.len();
        // Must be a whole attribute name: preceded by whitespace, followed by '='.
        let before_ok = at > 0 && bytes[at - 1].is_ascii_whitespace();
        let rest = lower[at + name.len()..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value_start = tag.len() - rest.len() + 1;
        let value_part = tag[value_start..].trim_start();
        let value = match value_part.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let inner = &value_part[1..];
                &inner[..inner.find(quote).unwrap_or(inner.len())]
            }
            _ => {
                let stop = value_part
                    .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
                    .unwrap_or(value_part.len());
                &value_part[..stop]
            }
        };
        return Some(decode_entities(value));
    }
    None
}

/// Decodes the few entities that appear in attribute values.
pub fn decode_entities(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2F;", "/")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}
