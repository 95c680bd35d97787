//! Splits signature text into tokens, each with its 1-based character
//! column. Lexing never fails: a character no token starts with becomes
//! [`Tok::Unknown`], and the parser reports it where it expected something
//! else, so every error has the same shape.

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    /// An identifier or keyword: `[A-Za-z_][A-Za-z0-9_]*`.
    Ident(String),
    /// A run of digits and letters starting with a digit (`4`, `0x10`,
    /// `12abc`); the parser decides whether it is a valid length.
    Number(String),
    /// One of `( ) * , ; : [ ] { }` or `...`.
    Punct(&'static str),
    /// A character that starts no token (`@`, a lone `.`).
    Unknown(char),
    /// The end of the text.
    Eof,
}

/// A token and where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    /// 1-based column, in characters.
    pub(crate) col: usize,
}

impl Token {
    /// The token as an error message's "found" part.
    pub(crate) fn describe(&self) -> String {
        match &self.tok {
            Tok::Ident(s) | Tok::Number(s) => format!("`{s}`"),
            Tok::Punct(p) => format!("`{p}`"),
            Tok::Unknown('`') => "a backtick".to_string(),
            Tok::Unknown(c) if c.is_control() => format!("character {:?}", c),
            Tok::Unknown(c) => format!("`{c}`"),
            Tok::Eof => "end of input".to_string(),
        }
    }
}

const PUNCT: &[&str] = &["(", ")", "*", ",", ";", ":", "[", "]", "{", "}"];

/// Tokenizes `text`; the last token is always [`Tok::Eof`].
pub(crate) fn lex(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let word = |i: usize| {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            (chars[i..j].iter().collect::<String>(), j)
        };
        let tok = if c.is_ascii_alphabetic() || c == '_' {
            let (s, j) = word(i);
            i = j;
            Tok::Ident(s)
        } else if c.is_ascii_digit() {
            let (s, j) = word(i);
            i = j;
            Tok::Number(s)
        } else if chars[i..].starts_with(&['.', '.', '.']) {
            i += 3;
            Tok::Punct("...")
        } else if let Some(p) = PUNCT.iter().find(|p| p.starts_with(c)) {
            i += 1;
            Tok::Punct(p)
        } else {
            i += 1;
            Tok::Unknown(c)
        };
        out.push(Token { tok, col });
    }
    out.push(Token {
        tok: Tok::Eof,
        col: chars.len() + 1,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<(Tok, usize)> {
        lex(text).into_iter().map(|t| (t.tok, t.col)).collect()
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(
            toks("é(int x, ...)"),
            vec![
                (Tok::Unknown('é'), 1),
                (Tok::Punct("("), 2),
                (Tok::Ident("int".into()), 3),
                (Tok::Ident("x".into()), 7),
                (Tok::Punct(","), 8),
                (Tok::Punct("..."), 10),
                (Tok::Punct(")"), 13),
                (Tok::Eof, 14),
            ]
        );
    }

    #[test]
    fn numbers_dots_and_strays() {
        assert_eq!(
            toks("a[0x1F]..@"),
            vec![
                (Tok::Ident("a".into()), 1),
                (Tok::Punct("["), 2),
                (Tok::Number("0x1F".into()), 3),
                (Tok::Punct("]"), 7),
                (Tok::Unknown('.'), 8),
                (Tok::Unknown('.'), 9),
                (Tok::Unknown('@'), 10),
                (Tok::Eof, 11),
            ]
        );
    }

    #[test]
    fn descriptions() {
        let d = |t: &str| lex(t)[0].describe();
        assert_eq!(d("foo"), "`foo`");
        assert_eq!(d(")"), "`)`");
        assert_eq!(d("..."), "`...`");
        assert_eq!(d(""), "end of input");
        assert_eq!(d("`"), "a backtick");
        assert_eq!(d("\u{1}"), "character '\\u{1}'");
    }
}
