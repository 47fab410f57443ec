//! A card's short-term memory: velocity, recent places, spending pattern, and whether it is
//! held; and the screening rules that read it.

use serde::{Deserialize, Serialize};

use crate::transaction::Transaction;

/// The window velocity counts transactions in, in seconds.
pub const VELOCITY_WINDOW_SECS: u64 = 600;
/// This many transactions within the window (this one included) is a burst.
pub const VELOCITY_LIMIT: usize = 4;
/// An amount this many times the card's average is unusual (once the card has history).
pub const AMOUNT_FACTOR: f64 = 5.0;
/// An amount at least this large is always looked at.
pub const LARGE_AMOUNT: f64 = 1000.0;
/// A change of country sooner than this after the previous payment is impossible travel.
pub const TRAVEL_SECS: u64 = 6 * 3600;

/// How many places the profile keeps.
const PLACES_KEPT: usize = 5;
/// How many transactions make a history worth comparing amounts with.
const HISTORY_FOR_AMOUNTS: u64 = 3;

/// Where and when a card was used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    pub city: String,
    /// Its country code.
    pub country: String,
    /// When, in seconds since the epoch.
    pub ts: u64,
}

/// What the agent remembers of a card between transactions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CardProfile {
    /// Transactions seen.
    pub count: u64,
    /// Their average amount.
    pub average_amount: f64,
    /// Times of the transactions within the velocity window of the latest.
    pub recent: Vec<u64>,
    /// The latest places, oldest first.
    pub places: Vec<Place>,
    /// The transaction after which the card was held, if it was.
    pub held_since: Option<String>,
}

impl CardProfile {
    /// What is unusual about `transaction` for this card, in words for the model and the
    /// analyst; empty when nothing is.
    pub fn anomalies(&self, transaction: &Transaction) -> Vec<String> {
        let mut anomalies = Vec::new();
        let window_start = transaction.ts.saturating_sub(VELOCITY_WINDOW_SECS);
        let in_window = 1 + self.recent.iter().filter(|&&ts| ts >= window_start).count();
        if in_window >= VELOCITY_LIMIT {
            anomalies.push(format!("velocity: {in_window} transactions within {} minutes", VELOCITY_WINDOW_SECS / 60));
        }
        let unusual = self.count >= HISTORY_FOR_AMOUNTS && transaction.amount > AMOUNT_FACTOR * self.average_amount;
        if transaction.amount >= LARGE_AMOUNT || unusual {
            anomalies.push(format!(
                "amount: {:.2} against an average of {:.2} over {} transactions",
                transaction.amount, self.average_amount, self.count
            ));
        }
        if let Some(last) = self.places.last()
            && last.country != transaction.country
            && transaction.ts.saturating_sub(last.ts) < TRAVEL_SECS
        {
            anomalies.push(format!(
                "location: {} ({}) {} minutes after {} ({})",
                transaction.city,
                transaction.country,
                transaction.ts.saturating_sub(last.ts) / 60,
                last.city,
                last.country
            ));
        }
        anomalies
    }

    /// Adds `transaction` to the profile.
    pub fn record(&mut self, transaction: &Transaction) {
        self.average_amount = (self.average_amount * self.count as f64 + transaction.amount) / (self.count + 1) as f64;
        self.count += 1;
        let window_start = transaction.ts.saturating_sub(VELOCITY_WINDOW_SECS);
        self.recent.retain(|&ts| ts >= window_start);
        self.recent.push(transaction.ts);
        self.places.push(Place {
            city: transaction.city.clone(),
            country: transaction.country.clone(),
            ts: transaction.ts,
        });
        if self.places.len() > PLACES_KEPT {
            self.places.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(amount: f64, country: &str, ts: u64) -> Transaction {
        Transaction {
            card: "c-1".into(),
            transaction_id: format!("t-{ts}"),
            amount,
            merchant: "m-shop".into(),
            city: format!("a city in {country}"),
            country: country.into(),
            ts,
        }
    }

    fn profile_of(payments: &[Transaction]) -> CardProfile {
        let mut profile = CardProfile::default();
        payments.iter().for_each(|p| profile.record(p));
        profile
    }

    #[test]
    fn ordinary_payments_raise_nothing() {
        let profile = profile_of(&[payment(20.0, "PT", 0), payment(30.0, "PT", 3600), payment(25.0, "PT", 7200)]);
        assert_eq!(profile.average_amount, 25.0);
        assert!(profile.anomalies(&payment(60.0, "PT", 10_800)).is_empty());
        assert!(profile.anomalies(&payment(60.0, "ES", 10_800 + TRAVEL_SECS)).is_empty(), "a trip, not a jump");
    }

    #[test]
    fn bursts_jumps_and_large_amounts_are_each_named() {
        let burst = profile_of(&[payment(10.0, "PT", 0), payment(10.0, "PT", 60), payment(10.0, "PT", 120)]);
        let anomalies = burst.anomalies(&payment(10.0, "PT", 180));
        assert_eq!(anomalies, vec!["velocity: 4 transactions within 10 minutes".to_string()]);
        let anomalies = burst.anomalies(&payment(1500.0, "NG", 900));
        assert_eq!(anomalies.len(), 2, "{anomalies:?}");
        assert!(anomalies[0].starts_with("amount: 1500.00 against an average of 10.00"));
        assert!(anomalies[1].starts_with("location: a city in NG (NG) 13 minutes after"));
    }

    #[test]
    fn the_window_and_places_stay_bounded() {
        let payments: Vec<Transaction> = (0..20).map(|i| payment(5.0, "PT", i * 300)).collect();
        let profile = profile_of(&payments);
        assert_eq!(profile.count, 20);
        assert_eq!(profile.recent, vec![5100, 5400, 5700]);
        assert_eq!(profile.places.len(), PLACES_KEPT);
    }
}
