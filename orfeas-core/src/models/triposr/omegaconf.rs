//! A YAML document as OmegaConf sees it after `OmegaConf.resolve`: every `${...}`
//! interpolation replaced by the value it points to.
//!
//! The published `config.yaml` uses `${tokenizer.num_channels}`; a config edited by hand may
//! use more of the grammar, so the parts that make sense in a model configuration are here:
//! absolute keys (`${a.b}`, `${a[0]}`, `${a.0}`), relative keys (`${.sibling}`,
//! `${..uncle}`), nested keys (`${a.${b}}`), a whole value (the target's type is kept: `${n}`
//! stays an integer) or a part of a string (the target's text is spliced in), chains of
//! interpolations, and `\${` for a literal `${`. Resolvers (`${oc.env:HOME}`) are refused: they
//! read the environment or run code, which a weights file has no business doing. Cycles and
//! missing keys are errors, as in OmegaConf.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::{Yaml, YamlLoader};

/// A YAML value; mapping keys are strings (OmegaConf's `DictConfig` keys).
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Node>),
    /// In file order.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// What the value is, for error messages.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) => "an integer",
            Node::Float(_) => "a float",
            Node::Str(_) => "a string",
            Node::List(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }
}

/// Parses the first document of `text`.
pub(super) fn parse(text: &str) -> Result<Node, String> {
    refuse_aliases(text)?;
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    let doc = docs
        .into_iter()
        .next()
        .ok_or_else(|| "the file holds no YAML document".to_owned())?;
    convert(doc)
}

/// The loader expands an alias by copying what it names, so a few hundred bytes of nested
/// aliases grow into gigabytes ("billion laughs"): aliases are refused from the event stream,
/// before anything is built. Syntax errors are left to the loader, which reports them.
fn refuse_aliases(text: &str) -> Result<(), String> {
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token() {
            Ok((Event::Alias(_), mark)) => {
                return Err(format!(
                    "YAML aliases are not supported (line {})",
                    mark.line()
                ))
            }
            Ok((Event::StreamEnd, _)) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
}

fn convert(y: Yaml) -> Result<Node, String> {
    Ok(match y {
        Yaml::Null => Node::Null,
        Yaml::Boolean(b) => Node::Bool(b),
        Yaml::Integer(i) => Node::Int(i),
        Yaml::Real(s) => Node::Float(parse_float(&s).ok_or_else(|| format!("bad float {s:?}"))?),
        Yaml::String(s) => Node::Str(s),
        Yaml::Array(items) => Node::List(items.into_iter().map(convert).collect::<Result<_, _>>()?),
        Yaml::Hash(map) => {
            let mut entries: Vec<(String, Node)> = Vec::with_capacity(map.len());
            for (k, v) in map {
                let key = match k {
                    Yaml::String(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => return Err(format!("unsupported mapping key {other:?}")),
                };
                entries.push((key, convert(v)?));
            }
            Node::Map(entries)
        }
        Yaml::Alias(_) => return Err("YAML aliases are not supported".to_owned()),
        Yaml::BadValue => return Err("a value YAML cannot represent".to_owned()),
    })
}

/// YAML 1.2 floats, including `.inf`, `-.inf` and `.nan`.
fn parse_float(s: &str) -> Option<f64> {
    match s.trim_start_matches('+') {
        ".inf" | ".Inf" | ".INF" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        other => other.parse().ok(),
    }
}

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A string split at its interpolations.
#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    /// `${...}`: the key expression, itself text and nested interpolations.
    Interp(Vec<Part>),
}

/// The whole tree with every interpolation resolved (`OmegaConf.resolve`).
pub(super) fn resolve(root: &Node) -> Result<Node, String> {
    Resolver {
        root,
        active: Vec::new(),
    }
    .node(root, &mut Vec::new())
}

struct Resolver<'a> {
    root: &'a Node,
    /// The values being resolved, outermost first: one seen again is a cycle.
    active: Vec<Vec<Seg>>,
}

impl Resolver<'_> {
    fn node(&mut self, node: &Node, path: &mut Vec<Seg>) -> Result<Node, String> {
        Ok(match node {
            Node::Str(s) if s.contains("${") => self.string(s, path)?,
            Node::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    let resolved = self.node(item, path);
                    path.pop();
                    out.push(resolved?);
                }
                Node::List(out)
            }
            Node::Map(entries) => {
                let mut out = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    path.push(Seg::Key(k.clone()));
                    let resolved = self.node(v, path);
                    path.pop();
                    out.push((k.clone(), resolved?));
                }
                Node::Map(out)
            }
            other => other.clone(),
        })
    }

    /// A string value at `path` that holds `${`.
    fn string(&mut self, s: &str, path: &[Seg]) -> Result<Node, String> {
        let at = display_path(path);
        let parts = split(s).map_err(|e| format!("{at}: {e} in {s:?}"))?;
        if self.active.iter().any(|p| p == path) {
            return Err(format!(
                "{at}: the interpolation refers back to itself (a cycle)"
            ));
        }
        self.active.push(path.to_vec());
        let result = match parts.as_slice() {
            [Part::Interp(key)] => self.lookup(key, path),
            _ => self.concat(&parts, path).map(Node::Str),
        };
        self.active.pop();
        result.map_err(|e| {
            if e.starts_with(&at) {
                e
            } else {
                format!("{at}: {e}")
            }
        })
    }

    fn concat(&mut self, parts: &[Part], path: &[Seg]) -> Result<String, String> {
        let mut out = String::new();
        for part in parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Interp(key) => out.push_str(&to_text(&self.lookup(key, path)?)?),
            }
        }
        Ok(out)
    }

    /// The resolved value a key expression names, seen from the value at `path`.
    fn lookup(&mut self, key: &[Part], path: &[Seg]) -> Result<Node, String> {
        let key = self.concat(key, path)?;
        let key = key.trim();
        if key.contains(':') {
            return Err(format!(
                "`${{{key}}}` calls an OmegaConf resolver; only plain key interpolation is supported"
            ));
        }
        let mut target = absolute(key, path)?;
        let node = get(self.root, &target).ok_or_else(|| {
            format!(
                "interpolation key `{key}` not found (no {})",
                display_path(&target)
            )
        })?;
        self.node(node, &mut target)
    }
}

/// `a.b`, `a[0].b`, `.sibling`, `..uncle` → an absolute path. Relative keys start from the
/// mapping or list that holds the value at `path`, one level up per extra dot.
fn absolute(key: &str, path: &[Seg]) -> Result<Vec<Seg>, String> {
    let dots = key.chars().take_while(|&c| c == '.').count();
    let mut out: Vec<Seg> = if dots == 0 {
        Vec::new()
    } else {
        let keep = path
            .len()
            .checked_sub(dots)
            .ok_or_else(|| format!("relative key `{key}` goes above the top of the file"))?;
        path[..keep].to_vec()
    };
    let rest = &key[dots..];
    if rest.is_empty() {
        return Err(format!("empty interpolation key `{key}`"));
    }
    for piece in rest.split('.') {
        let (name, indices) = match piece.find('[') {
            Some(i) => piece.split_at(i),
            None => (piece, ""),
        };
        if !name.is_empty() {
            out.push(Seg::Key(name.to_owned()));
        } else if indices.is_empty() {
            return Err(format!("empty component in interpolation key `{key}`"));
        }
        let mut rest = indices;
        while let Some(open) = rest.strip_prefix('[') {
            let close = open
                .find(']')
                .ok_or_else(|| format!("unclosed `[` in interpolation key `{key}`"))?;
            let index = open[..close]
                .trim()
                .parse()
                .map_err(|_| format!("bad index in interpolation key `{key}`"))?;
            out.push(Seg::Index(index));
            rest = &open[close + 1..];
        }
        if !rest.is_empty() {
            return Err(format!("bad interpolation key `{key}`"));
        }
    }
    Ok(out)
}

fn get<'a>(root: &'a Node, path: &[Seg]) -> Option<&'a Node> {
    path.iter().try_fold(root, |node, seg| match (node, seg) {
        (Node::Map(entries), Seg::Key(k)) => entries.iter().find(|(n, _)| n == k).map(|(_, v)| v),
        (Node::List(items), Seg::Index(i)) => items.get(*i),
        (Node::List(items), Seg::Key(k)) => k.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// Splits a string into text and `${...}` parts (nested ones included); `\${` is a literal.
fn split(s: &str) -> Result<Vec<Part>, String> {
    let chars: Vec<char> = s.chars().collect();
    let (parts, end) = split_from(&chars, 0, false)?;
    debug_assert_eq!(end, chars.len());
    Ok(parts)
}

/// Parses from `i` to the end of the string, or (`inside`) to the `}` closing an
/// interpolation; returns the parts and the index after where it stopped.
fn split_from(chars: &[char], mut i: usize, inside: bool) -> Result<(Vec<Part>, usize), String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    while i < chars.len() {
        match (chars[i], chars.get(i + 1), chars.get(i + 2)) {
            ('\\', Some('$'), Some('{')) => {
                text.push_str("${");
                i += 3;
            }
            ('$', Some('{'), _) => {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                let (inner, next) = split_from(chars, i + 2, true)?;
                parts.push(Part::Interp(inner));
                i = next;
            }
            ('}', _, _) if inside => {
                if !text.is_empty() {
                    parts.push(Part::Text(text));
                }
                return Ok((parts, i + 1));
            }
            (c, _, _) => {
                text.push(c);
                i += 1;
            }
        }
    }
    if inside {
        return Err("unclosed `${`".to_owned());
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok((parts, i))
}

/// A value spliced into a string, as Python's `str()` writes it (OmegaConf's behaviour).
fn to_text(node: &Node) -> Result<String, String> {
    Ok(match node {
        Node::Null => "None".to_owned(),
        Node::Bool(true) => "True".to_owned(),
        Node::Bool(false) => "False".to_owned(),
        Node::Int(i) => i.to_string(),
        Node::Float(f) if f.is_nan() => "nan".to_owned(),
        Node::Float(f) if f.is_infinite() => if *f > 0.0 { "inf" } else { "-inf" }.to_owned(),
        // Rust's `{:?}` is the shortest round-trip form with `.0` on integers, like Python's.
        Node::Float(f) => format!("{f:?}"),
        Node::Str(s) => s.clone(),
        other => return Err(format!("cannot splice {} into a string", other.kind())),
    })
}

fn display_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() {
        out.push_str("<top>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(text: &str) -> Result<Node, String> {
        resolve(&parse(text)?)
    }

    fn at<'a>(node: &'a Node, key: &str) -> &'a Node {
        let path = absolute(key, &[]).expect("key");
        get(node, &path).expect("present")
    }

    #[test]
    fn whole_values_keep_their_type_and_strings_splice() {
        let n = resolved(
            "a:\n  b: 1024\n  f: 0.87\n  s: vit\nc: ${a.b}\nd: \"x_${a.b}_${a.f}/${a.s}\"\n\
             e: [10, 20]\ng: ${e[1]}\nh: ${e.0}\nesc: '\\${a.b}'\n",
        )
        .expect("resolves");
        assert_eq!(at(&n, "c"), &Node::Int(1024));
        assert_eq!(at(&n, "d"), &Node::Str("x_1024_0.87/vit".into()));
        assert_eq!(at(&n, "g"), &Node::Int(20));
        assert_eq!(at(&n, "h"), &Node::Int(10));
        assert_eq!(at(&n, "esc"), &Node::Str("${a.b}".into()));
    }

    #[test]
    fn chains_nesting_and_relative_keys() {
        let n = resolved(
            "k: b\na:\n  b: 7\n  c: ${.b}\n  d:\n    e: ${..c}\nx: ${a.${k}}\ny: ${a.d.e}\n",
        )
        .expect("resolves");
        assert_eq!(at(&n, "a.c"), &Node::Int(7));
        assert_eq!(at(&n, "a.d.e"), &Node::Int(7));
        assert_eq!(at(&n, "x"), &Node::Int(7));
        assert_eq!(at(&n, "y"), &Node::Int(7));
    }

    #[test]
    fn cycles_missing_keys_resolvers_and_syntax_are_errors() {
        let err = resolved("a: ${b}\nb: ${a}\n").expect_err("cycle");
        assert!(err.contains("cycle"), "{err}");
        let err = resolved("a: ${a}\n").expect_err("self");
        assert!(err.contains("cycle"), "{err}");
        let err = resolved("a: {b: 1}\nc: ${a.x}\n").expect_err("missing");
        assert!(
            err.contains("`a.x` not found") && err.starts_with("c:"),
            "{err}"
        );
        let err = resolved("a: ${oc.env:HOME}\n").expect_err("resolver");
        assert!(err.contains("resolver"), "{err}");
        let err = resolved("a: \"${b\"\nb: 1\n").expect_err("unclosed");
        assert!(err.contains("unclosed"), "{err}");
        let err = resolved("a: ${...x}\n").expect_err("above top");
        assert!(err.contains("above the top"), "{err}");
        assert!(parse("a: [1, 2\n").is_err());
        assert!(parse("").is_err());
    }
}
