//! Calendar months in the provider's time zone (Europe/Paris): billing periods are calendar
//! months (R-6.1a default), a day belongs to the Paris date it falls on.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The provider's time zone.
pub fn paris() -> TimeZone {
    TimeZone::get("Europe/Paris").expect("the bundled tz database has Europe/Paris")
}

/// The Paris calendar date of an instant.
pub fn paris_date(t: Timestamp) -> Date {
    t.to_zoned(paris()).date()
}

/// The instant a Paris date begins.
pub fn paris_midnight(d: Date) -> Timestamp {
    d.to_zoned(paris())
        .expect("midnight exists in Paris")
        .timestamp()
}

pub fn month_start(d: Date) -> Date {
    d.first_of_month()
}

pub fn month_end(d: Date) -> Date {
    d.last_of_month()
}

pub fn days_in_month(d: Date) -> i64 {
    i64::from(d.days_in_month())
}

/// The first day of the next month.
pub fn next_month(d: Date) -> Date {
    d.last_of_month().tomorrow().expect("dates stay in range")
}

/// The first day of the previous month.
pub fn previous_month(d: Date) -> Date {
    d.first_of_month()
        .yesterday()
        .expect("dates stay in range")
        .first_of_month()
}

/// A closed range of days `[start, end]` inside one calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: Date,
    pub end: Date,
}

impl Period {
    /// The whole calendar month containing `d`.
    pub fn month_of(d: Date) -> Period {
        Period {
            start: month_start(d),
            end: month_end(d),
        }
    }
    /// From `d` to the end of its month.
    pub fn rest_of_month(d: Date) -> Period {
        Period {
            start: d,
            end: month_end(d),
        }
    }
    /// Days in the period, both ends included.
    pub fn days(&self) -> i64 {
        (self.end - self.start).get_days() as i64 + 1
    }
    /// Whether the period covers its whole month.
    pub fn is_whole_month(&self) -> bool {
        self.start == month_start(self.start) && self.end == month_end(self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn paris_dates_follow_the_time_zone() {
        // 23:30 UTC on 31 Jan is already 1 Feb in Paris (UTC+1 in winter).
        let t: Timestamp = "2026-01-31T23:30:00Z".parse().unwrap();
        assert_eq!(paris_date(t), date(2026, 2, 1));
        // In summer Paris is UTC+2: 22:30 UTC on 30 June is 1 July.
        let t: Timestamp = "2026-06-30T22:30:00Z".parse().unwrap();
        assert_eq!(paris_date(t), date(2026, 7, 1));
        assert_eq!(
            paris_midnight(date(2026, 7, 1)).to_string(),
            "2026-06-30T22:00:00Z"
        );
    }

    #[test]
    fn month_arithmetic_and_leap_years() {
        assert_eq!(days_in_month(date(2028, 2, 10)), 29);
        assert_eq!(days_in_month(date(2026, 2, 10)), 28);
        assert_eq!(next_month(date(2026, 12, 15)), date(2027, 1, 1));
        assert_eq!(previous_month(date(2026, 3, 31)), date(2026, 2, 1));
        assert_eq!(Period::rest_of_month(date(2026, 11, 26)).days(), 5);
        assert!(Period::month_of(date(2026, 2, 3)).is_whole_month());
        assert!(!Period::rest_of_month(date(2026, 2, 3)).is_whole_month());
    }
}
