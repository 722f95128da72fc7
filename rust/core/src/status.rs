//! An account's status: an index into the profile's ladder (METHODOLOGY.md
//! §6), or [`Status::BANKRUPT`] past its end. Results carry the index; the
//! name is looked up in the profile only where a result is shown or converted
//! ([`crate::RiskParams::status_name`]), so evaluating an account touches no
//! string and parallel workers share no reference count.

/// The status of an account whose equity is below zero (or zero with a
/// liability): decided by equity, not by the ladder, and worse than every level.
pub const BANKRUPT: &str = "BANKRUPT";

/// Most levels a profile's ladder may list: every level, `BANKRUPT` and the
/// batch's `ERROR` have a code below `u16::MAX`.
pub const MAX_STATUS_LEVELS: usize = 1024;

/// A status, ordered from healthiest to worst: level `i` of the ladder is
/// `Status::level(i)` (0 the healthiest), then [`Status::BANKRUPT`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Status(u16);

impl Status {
    /// Past every ladder level, whatever the profile's length.
    pub const BANKRUPT: Status = Status(u16::MAX);

    /// Level `i` of the ladder (`i` < [`MAX_STATUS_LEVELS`], checked when the profile is read).
    pub const fn level(i: usize) -> Status {
        debug_assert!(i < MAX_STATUS_LEVELS);
        Status(i as u16)
    }

    /// The ladder index, `None` for `BANKRUPT`.
    pub const fn index(self) -> Option<usize> {
        if self.is_bankrupt() {
            None
        } else {
            Some(self.0 as usize)
        }
    }

    pub const fn is_bankrupt(self) -> bool {
        self.0 == u16::MAX
    }

    /// The code of this status in a column whose names are a ladder of
    /// `levels` levels then `BANKRUPT` (and, in a batch, `ERROR`): the ladder
    /// index, `levels` for `BANKRUPT`.
    pub const fn code(self, levels: usize) -> u16 {
        if self.is_bankrupt() {
            levels as u16
        } else {
            self.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bankrupt_ranks_below_every_level_and_codes_past_the_ladder() {
        let last = Status::level(MAX_STATUS_LEVELS - 1);
        assert!(Status::level(0) < Status::level(1) && last < Status::BANKRUPT);
        assert_eq!((last.index(), Status::BANKRUPT.index()), (Some(MAX_STATUS_LEVELS - 1), None));
        assert_eq!((Status::level(3).code(4), Status::BANKRUPT.code(4)), (3, 4));
        assert!(MAX_STATUS_LEVELS + 1 < usize::from(u16::MAX));
    }
}
