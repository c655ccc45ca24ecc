//! Redis's glob matching (`stringmatchlen`), for PSUBSCRIBE patterns and CONFIG GET.

/// Redis's glob (`stringmatchlen`): `*`, `?`, `[abc]`, `[^a-z]`, `\x`.
pub(super) fn glob(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, text index it matched to).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let mut matched = None;
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                b'?' => matched = Some(p + 1),
                b'[' => {
                    let mut i = p + 1;
                    let negate = pattern.get(i) == Some(&b'^');
                    if negate {
                        i += 1;
                    }
                    let mut hit = false;
                    while i < pattern.len() && pattern[i] != b']' {
                        if pattern[i] == b'\\' && i + 1 < pattern.len() {
                            hit |= eq(pattern[i + 1], text[t]);
                            i += 2;
                        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' {
                            let (mut lo, mut hi) = (pattern[i], pattern[i + 2]);
                            if lo > hi {
                                std::mem::swap(&mut lo, &mut hi);
                            }
                            let c = text[t];
                            let candidates = if nocase {
                                [c, c.to_ascii_lowercase(), c.to_ascii_uppercase()]
                            } else {
                                [c; 3]
                            };
                            hit |= candidates.iter().any(|c| (lo..=hi).contains(c));
                            i += 3;
                        } else {
                            hit |= eq(pattern[i], text[t]);
                            i += 1;
                        }
                    }
                    if hit != negate {
                        matched = Some((i + 1).min(pattern.len()));
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if eq(pattern[p + 1], text[t]) {
                        matched = Some(p + 2);
                    }
                }
                c => {
                    if eq(c, text[t]) {
                        matched = Some(p + 1);
                    }
                }
            }
        }
        match (matched, star) {
            (Some(next), _) => {
                p = next;
                t += 1;
            }
            (None, Some((sp, st))) => {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_redis() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "+switch-master", true),
            ("+s*", "+sdown", true),
            ("+s*", "-sdown", false),
            ("?sdown", "-sdown", true),
            ("[-+]sdown", "-sdown", true),
            ("[^+]sdown", "+sdown", false),
            ("[a-c]x", "bx", true),
            ("*down", "+odown", true),
            ("*down*", "+odown", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("\\*", "*", true),
            ("\\*", "x", false),
            ("", "", true),
            ("", "x", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob(p.as_bytes(), t.as_bytes(), false), *want, "{p} ~ {t}");
        }
        assert!(glob(b"RESOLVE-*", b"resolve-hostnames", true));
        assert!(!glob(b"RESOLVE-*", b"resolve-hostnames", false));
    }
}
