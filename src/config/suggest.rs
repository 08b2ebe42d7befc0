//! Variables that look meant for portcullis but that it does not read: a misspelt variable
//! silently falls back to its default, so it is worth a warning that names the real one.

use std::collections::HashMap;

use super::variables::ENV_VARIABLES;

/// Prefixes of our variables: a variable with one of them that we do not read is probably a typo.
const OWN_PREFIXES: &[&str] = &["OIDC_", "COOKIE_", "SESSION_", "PORTCULLIS_"];

/// One warning per variable that is set, not ours, and prefixed like ours or close to one of
/// ours; sorted by name so that startup logs read the same every time.
pub(super) fn unread_variables(
    env: &HashMap<String, String>,
    read_elsewhere: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut names: Vec<&str> = env
        .keys()
        .map(String::as_str)
        .filter(|name| !ENV_VARIABLES.contains(name) && !read_elsewhere(name))
        .collect();
    names.sort_unstable();
    names.into_iter().filter_map(warning).collect()
}

fn warning(name: &str) -> Option<String> {
    let prefixed = OWN_PREFIXES.iter().any(|p| name.starts_with(p));
    match did_you_mean(name).as_slice() {
        [] if prefixed => Some(format!(
            "{name} is set but portcullis does not read it (a typo?)"
        )),
        [] => None,
        closest => Some(format!(
            "{name} is set but portcullis does not read it: did you mean {}?",
            closest.join(" or ")
        )),
    }
}

/// Our variables nearest to `name`, when any is near enough to be a slip (several only on a
/// tie, in table order). Case is ignored: `cookie_secret` means `COOKIE_SECRET`.
pub(super) fn did_you_mean(name: &str) -> Vec<&'static str> {
    let name = name.to_ascii_uppercase();
    let near: Vec<(usize, &'static str)> = ENV_VARIABLES
        .iter()
        .filter_map(|&ours| nearness(&name, ours).map(|distance| (distance, ours)))
        .collect();
    let best = near.iter().map(|&(distance, _)| distance).min();
    near.into_iter()
        .filter(|&(distance, _)| Some(distance) == best)
        .map(|(_, ours)| ours)
        .collect()
}

/// How many edits separate `name` from `ours`, when few enough for a typo. Longer names
/// allow more (one edit per five characters, one to three), since a short name two edits
/// away is as likely another program's variable. Adding or dropping up to three characters
/// at the end (`LISTEN_ADDRESS`) counts too.
fn nearness(name: &str, ours: &str) -> Option<usize> {
    let (len, our_len) = (name.chars().count(), ours.chars().count());
    // Every edit changes the length by at most one: spare the table work for far names.
    if len.abs_diff(our_len) > 3 {
        return None;
    }
    let distance = edit_distance(name, ours);
    let extended = name.starts_with(ours) || ours.starts_with(name);
    (distance <= (our_len / 5).clamp(1, 3) || extended).then_some(distance)
}

/// Optimal string alignment distance: Levenshtein distance where swapping two neighbouring
/// characters (`ULR` for `URL`) is one edit, not two.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: the distance between the first i characters of a and the first j of b.
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = d[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut best = substitution.min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}
