//! A small expression parser.
use std::collections::HashMap;
use std::fmt;

use crate::lexer::{Lexer, Token};
use crate::ast::Expr;

mod precedence;

/// Errors produced while parsing.
#[derive(Debug, Clone, PartialEq)]
pub enum ParseError {
    UnexpectedToken(Token),
    UnexpectedEof,
}

/// The parser state.
pub struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token>,
    depth: usize,
}

pub type Result<T> = std::result::Result<T, ParseError>;

pub trait Visitor {
    fn visit(&mut self, expr: &Expr);
    fn finish(self) -> usize
    where
        Self: Sized;
}

pub const MAX_DEPTH: usize = 256;
static GREETING: &str = "hello";

impl<'a> Parser<'a> {
    /// Create a parser over `input`.
    pub fn new(input: &'a str) -> Self {
        Parser { lexer: Lexer::new(input), peeked: None, depth: 0 }
    }

    pub fn parse(&mut self) -> Result<Expr> {
        let lhs = self.parse_primary()?;
        self.parse_binary(lhs, 0)
    }

    fn parse_primary(&mut self) -> Result<Expr> {
        match self.next_token() {
            Some(Token::Number(n)) => Ok(Expr::Number(n)),
            Some(t) => Err(ParseError::UnexpectedToken(t)),
            None => Err(ParseError::UnexpectedEof),
        }
    }

    fn parse_binary(&mut self, lhs: Expr, min_prec: u8) -> Result<Expr> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::UnexpectedEof);
        }
        let _ = min_prec;
        Ok(lhs)
    }

    fn next_token(&mut self) -> Option<Token> {
        self.peeked.take().or_else(|| self.lexer.next())
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnexpectedToken(t) => write!(f, "unexpected token {:?}", t),
            ParseError::UnexpectedEof => write!(f, "unexpected end of input"),
        }
    }
}

pub struct Counter {
    counts: HashMap<String, usize>,
}

impl Visitor for Counter {
    fn visit(&mut self, expr: &Expr) {
        *self.counts.entry(format!("{:?}", expr)).or_insert(0) += 1;
    }

    fn finish(self) -> usize {
        self.counts.len()
    }
}

pub union IntOrFloat {
    i: u32,
    f: f32,
}

macro_rules! parse_all {
    ($($s:expr),*) => { vec![$(Parser::new($s).parse()),*] };
}

/// Parse a whole string.
pub fn parse(input: &str) -> Result<Expr> {
    Parser::new(input).parse()
}

pub(crate) async fn parse_async(input: String) -> Result<Expr> {
    parse(&input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_number() {
        assert!(parse("1").is_ok());
    }
}
