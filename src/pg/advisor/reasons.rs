//! Why a statement got no suggestion: each table's reason, the most
//! telling kept ([`Reason`], least telling first), and the statement's
//! own ([`Why`]), as [`super::NotAdvised::reason`] spells them.

/// Why one table of a statement got no suggestion, least telling first
/// (a later step of the advice tells more).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Reason {
    TableNotFound,
    SmallTable,
    LowSelectivity,
    PatternTrigramOnly,
    PatternUnconfirmed,
    AlreadyIndexed,
    ExpressionUnconfirmed,
    NoSaving,
}

impl Reason {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::TableNotFound => "table_not_found",
            Self::SmallTable => "small_table",
            Self::LowSelectivity => "low_selectivity",
            Self::PatternTrigramOnly => "pattern_trigram_only",
            Self::PatternUnconfirmed => "pattern_unconfirmed",
            Self::AlreadyIndexed => "already_indexed",
            Self::ExpressionUnconfirmed => "expression_unconfirmed",
            Self::NoSaving => "no_saving",
        }
    }
}

/// Why one statement got no suggestion, as its advice goes.
#[derive(Debug, Default)]
pub(super) struct Why {
    /// A suggestion was made for one of its tables.
    pub(super) advised: bool,
    /// A reason for the whole statement (parsing).
    pub(super) statement: Option<&'static str>,
    /// The most telling of its tables' reasons.
    pub(super) table: Option<Reason>,
    /// The unconfirmed pattern index, with [`Reason::PatternUnconfirmed`].
    pub(super) pattern: Option<String>,
}

impl Why {
    pub(super) fn statement(&mut self, reason: &'static str) {
        self.statement = Some(reason);
    }

    pub(super) fn table(&mut self, reason: Reason) {
        self.table = self.table.max(Some(reason));
    }

    /// The reason, when the statement got no suggestion.
    pub(super) fn reason(&self) -> Option<&'static str> {
        if self.advised {
            return None;
        }
        Some(
            self.statement
                .or(self.table.map(Reason::as_str))
                .unwrap_or("no_candidate"),
        )
    }
}
