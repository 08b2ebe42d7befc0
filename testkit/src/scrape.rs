//! Reading a Prometheus text exposition (what `/metrics` answers) the way a scraper does: one
//! sample per line, `name{label="value",...} number`, comments starting with `#`.

/// A sample's labels, unescaped, in the order written.
pub type Labels = Vec<(String, String)>;

/// Every sample of `name`: its labels and its value.
pub fn samples(text: &str, name: &str) -> Vec<(Labels, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(parse_line)
        .filter(|(sample, _, _)| sample == name)
        .map(|(_, labels, value)| (labels, value))
        .collect()
}

/// The value of the sample of `name` whose labels are exactly `labels`, in any order.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut wanted: Vec<(&str, &str)> = labels.to_vec();
    wanted.sort_unstable();
    samples(text, name)
        .into_iter()
        .find(|(have, _)| {
            let mut have: Vec<(&str, &str)> =
                have.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            have.sort_unstable();
            have == wanted
        })
        .map(|(_, value)| value)
}

fn parse_line(line: &str) -> Option<(String, Labels, f64)> {
    let line = line.trim();
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    Some((name.to_string(), labels, value))
}

/// `a="x",b="y\"z"}` -> the pairs and what follows the `}`.
fn parse_labels(mut text: &str) -> Option<(Labels, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start_matches([',', ' ']);
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((key.trim().to_string(), value));
        text = &after[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP requests_total Requests.
# TYPE requests_total counter
requests_total{endpoint=\"auth\",outcome=\"allow\"} 3
requests_total{endpoint=\"forward-auth\",outcome=\"allow\"} 0
requests_total{outcome=\"deny\",endpoint=\"auth\",note=\"a \\\"b\\\", c\"} 1
process_open_fds 12
latency_bucket{le=\"+Inf\"} 7
";

    #[test]
    fn samples_are_found_by_their_exact_labels_in_any_order() {
        let allow = [("endpoint", "auth"), ("outcome", "allow")];
        assert_eq!(value(TEXT, "requests_total", &allow), Some(3.0));
        let other = [("outcome", "allow"), ("endpoint", "forward-auth")];
        assert_eq!(value(TEXT, "requests_total", &other), Some(0.0));
        // A subset of a sample's labels is not that sample.
        assert_eq!(value(TEXT, "requests_total", &[("endpoint", "auth")]), None);
        let escaped = [
            ("endpoint", "auth"),
            ("outcome", "deny"),
            ("note", "a \"b\", c"),
        ];
        assert_eq!(value(TEXT, "requests_total", &escaped), Some(1.0));
        assert_eq!(value(TEXT, "process_open_fds", &[]), Some(12.0));
        assert_eq!(value(TEXT, "latency_bucket", &[("le", "+Inf")]), Some(7.0));
        assert_eq!(value(TEXT, "requests", &[]), None);
        assert_eq!(samples(TEXT, "requests_total").len(), 3);
    }
}
