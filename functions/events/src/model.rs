//! What an event is, and the rules its fields follow.

use serde::{Deserialize, Serialize};
use shared::ApiError;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use unicode_normalization::UnicodeNormalization;
use utoipa::ToSchema;

/// The categories an event can have.
pub const CATEGORIES: &[&str] = &[
    "music",
    "sports",
    "arts",
    "food",
    "tech",
    "community",
    "education",
    "family",
    "nightlife",
    "outdoors",
    "other",
];
/// [`CATEGORIES`] as the OpenAPI document names them (a test keeps the two lists equal).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Category {
    Music,
    Sports,
    Arts,
    Food,
    Tech,
    Community,
    Education,
    Family,
    Nightlife,
    Outdoors,
    Other,
}

pub const MAX_TAGS: usize = 10;
pub const MAX_CAPACITY: u32 = 100_000;
pub const MAX_DURATION_DAYS: i64 = 30;

/// An event id as the API takes it: `evt_` and 28 lowercase hex digits ([`parse_id`]).
#[derive(ToSchema)]
#[schema(
    pattern = "^evt_[0-9a-f]{28}$",
    example = "evt_019a4f0c2b1e5d3c2a1b0f9e8d7c"
)]
pub struct EventId(pub String);

/// The id pattern in the OpenAPI document (path parameters too).
pub const EVENT_ID_PATTERN: &str = "^evt_[0-9a-f]{28}$";

/// A new event as posted.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// 3 to 120 characters (NFKC, trimmed).
    #[schema(min_length = 3, max_length = 120)]
    pub title: String,
    /// Up to 5000 characters.
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    /// 1 to 80 characters once normalised: NFKC, trimmed, inner spaces collapsed, lower case.
    #[schema(min_length = 1, pattern = "\\S")]
    pub city: String,
    /// One of the categories (matched case-insensitively).
    #[schema(value_type = Category)]
    pub category: String,
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub venue: String,
    /// Up to 10, each 1 to 30 characters, normalised like the city; repeats collapse.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub tags: Vec<String>,
    /// RFC 3339 with an offset; in the future.
    #[schema(format = DateTime, example = "2030-06-01T19:00:00+02:00")]
    pub starts_at: String,
    /// RFC 3339 with an offset; after `starts_at`, at most 30 days later.
    #[schema(format = DateTime, example = "2030-06-01T23:00:00+02:00")]
    pub ends_at: String,
    /// 1 to 100 000.
    #[schema(minimum = 1, maximum = 100000)]
    pub capacity: u32,
    /// A ticket sale with a rush at one moment: joins go through the event's ordered intake
    /// queue and are admitted in batches (decision 0012). Default false.
    #[serde(default)]
    pub hot: bool,
}

/// A partial update: only the fields present change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventPatch {
    #[schema(min_length = 3, max_length = 120)]
    pub title: Option<String>,
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    #[schema(min_length = 1, pattern = "\\S")]
    pub city: Option<String>,
    #[schema(value_type = Option<Category>)]
    pub category: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    pub venue: Option<String>,
    #[schema(max_items = 10)]
    pub tags: Option<Vec<String>>,
    #[schema(format = DateTime)]
    pub starts_at: Option<String>,
    #[schema(format = DateTime)]
    pub ends_at: Option<String>,
    /// At least the seats already taken.
    #[schema(minimum = 1, maximum = 100000)]
    pub capacity: Option<u32>,
    /// Joins through the ordered intake (decision 0012).
    pub hot: Option<bool>,
}

/// The validated fields of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventData {
    pub title: String,
    pub description: String,
    pub city: String,
    pub category: String,
    pub venue: String,
    pub tags: Vec<String>,
    pub starts_at: OffsetDateTime,
    pub ends_at: OffsetDateTime,
    pub capacity: u32,
    /// Joins go through the ordered intake (decision 0012).
    pub hot: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Cancelled,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub owner_id: String,
    pub data: EventData,
    pub status: Status,
    pub version: u64,
    pub joined: u32,
    /// People on the waitlist.
    pub waitlisted: u32,
    /// Waitlist tickets handed out so far (the last ticket's number).
    pub wl_seq: u64,
    /// Outbox messages committed for this event so far: the last message's `seq` (every
    /// change that writes messages numbers them from here, on the condition that the number
    /// is still the one read, so the numbers follow commit order without gaps).
    pub msg_seq: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// An event as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    #[schema(example = "evt_019a4f0c2b1e5d3c2a1b0f9e8d7c")]
    pub id: String,
    pub owner_id: String,
    pub title: String,
    pub description: String,
    pub city: String,
    pub category: String,
    pub venue: String,
    pub tags: Vec<String>,
    /// UTC, RFC 3339.
    pub starts_at: String,
    /// UTC, RFC 3339.
    pub ends_at: String,
    pub capacity: u32,
    /// Joins are admitted through the event's ordered intake: a join may answer 202
    /// `pending` first (decision 0012).
    pub hot: bool,
    /// Seats taken.
    pub joined: u32,
    /// People waiting for a seat.
    pub waitlisted: u32,
    pub status: Status,
    /// Increases with every change; the ETag is `"v<version>"`.
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl Event {
    /// A new, active event of `owner_id`, created at `at`: version 1, nobody joined yet.
    pub fn new(id: String, owner_id: String, data: EventData, at: OffsetDateTime) -> Event {
        let stamp = utc(at);
        Event {
            id,
            owner_id,
            data,
            status: Status::Active,
            version: 1,
            joined: 0,
            waitlisted: 0,
            wl_seq: 0,
            msg_seq: 0,
            created_at: stamp.clone(),
            updated_at: stamp,
        }
    }

    pub fn view(&self) -> EventView {
        EventView {
            id: self.id.clone(),
            owner_id: self.owner_id.clone(),
            title: self.data.title.clone(),
            description: self.data.description.clone(),
            city: self.data.city.clone(),
            category: self.data.category.clone(),
            venue: self.data.venue.clone(),
            tags: self.data.tags.clone(),
            starts_at: utc(self.data.starts_at),
            ends_at: utc(self.data.ends_at),
            capacity: self.data.capacity,
            hot: self.data.hot,
            joined: self.joined,
            waitlisted: self.waitlisted,
            status: self.status,
            version: self.version,
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
        }
    }

    /// The event's ETag: weak (the compressed and the plain body are the same event), naming
    /// the edit version and the seat counts — a join changes it, so a cached copy with old counts
    /// is not answered 304; an `If-Match` names the version only (an edit does not depend on
    /// the counts: [`etag_version`]).
    pub fn etag(&self) -> String {
        etag(self.version, self.joined, self.waitlisted)
    }

    /// Whether an `If-None-Match` value matches this event as it is now (weak comparison; `*`).
    pub fn etag_matches(&self, if_none_match: &str) -> bool {
        none_match(if_none_match, &self.etag())
    }
}

/// Whether an `If-None-Match` value names `tag` (weak comparison: `W/` ignored) or is `*`.
pub fn none_match(if_none_match: &str, tag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let tag = opaque(tag);
    if_none_match.trim() == "*" || if_none_match.split(',').any(|t| opaque(t) == tag)
}

pub fn etag(version: u64, joined: u32, waitlisted: u32) -> String {
    format!("W/\"v{version}.{joined}.{waitlisted}\"")
}

/// The version an `If-Match` / `If-None-Match` value names (`W/"v3.5.2"`, or the older `"v3"`
/// and `W/"v3"`), if any.
pub fn etag_version(value: &str) -> Option<u64> {
    let v = value.trim().trim_start_matches("W/");
    let inner = v.strip_prefix("\"v")?.strip_suffix('"')?;
    let mut parts = inner.split('.');
    let version = parts.next()?.parse().ok()?;
    match (parts.next(), parts.next(), parts.next()) {
        (None, None, None) => Some(version),
        (Some(j), Some(w), None) if j.parse::<u32>().is_ok() && w.parse::<u32>().is_ok() => {
            Some(version)
        }
        _ => None,
    }
}

/// Second-precision UTC RFC 3339 (`2030-06-01T17:00:00Z`): fixed width, so it sorts as text.
pub use shared::outbox::utc;

/// Parses RFC 3339 with an offset, to the second.
pub fn parse_time(raw: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(raw.trim(), &Rfc3339)
        .map(|t| t.replace_nanosecond(0).expect("0 ns is valid"))
        .map_err(|_| {
            "must be an RFC 3339 date-time with an offset, like 2030-06-01T19:00:00+02:00"
                .to_owned()
        })
}

/// NFKC, trimmed, inner whitespace collapsed to one space, lower case.
pub fn normalise(raw: &str) -> String {
    raw.nfkc()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A lowercase event id: `evt_` and 28 hex digits.
pub fn parse_id(raw: &str) -> Result<String, String> {
    let ok = raw.strip_prefix("evt_").is_some_and(|h| {
        h.len() == 28
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(raw.to_owned())
    } else {
        Err("must be an event id: evt_ and 28 lowercase hex digits".into())
    }
}

/// Collects every invalid field, then becomes one 422 naming them all.
#[derive(Default)]
pub struct Problems(Vec<(String, String)>);

impl Problems {
    pub fn add(&mut self, field: &str, reason: impl Into<String>) {
        self.0.push((field.to_owned(), reason.into()));
    }
    pub fn into_result(self) -> Result<(), ApiError> {
        let mut it = self.0.into_iter();
        match it.next() {
            None => Ok(()),
            Some((f, r)) => Err(it.fold(ApiError::validation(f, r), |e, (f, r)| e.field(f, r))),
        }
    }
}

fn text(p: &mut Problems, field: &str, raw: &str, min: usize, max: usize) -> String {
    let v: String = raw.nfkc().collect::<String>().trim().to_owned();
    let n = v.chars().count();
    if n < min || n > max {
        p.add(field, format!("must be {min} to {max} characters, got {n}"));
    } else if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        p.add(field, "must not contain control characters");
    }
    v
}

fn label(p: &mut Problems, field: &str, raw: &str, max: usize) -> String {
    let v = normalise(raw);
    let n = v.chars().count();
    if n == 0 || n > max {
        p.add(field, format!("must be 1 to {max} characters, got {n}"));
    } else if v.chars().any(|c| c.is_control() || c == '#') {
        p.add(field, "must not contain control characters or '#'");
    }
    v
}

impl NewEvent {
    /// Validates and normalises every field; `now` decides what "in the future" means.
    pub fn validate(&self, now: OffsetDateTime) -> Result<EventData, ApiError> {
        let mut p = Problems::default();
        let data = fields(
            &mut p,
            Fields {
                title: &self.title,
                description: &self.description,
                city: &self.city,
                category: &self.category,
                venue: &self.venue,
                tags: &self.tags,
                starts_at: &self.starts_at,
                ends_at: &self.ends_at,
                capacity: self.capacity,
                hot: self.hot,
            },
            now,
            true,
        );
        p.into_result()?;
        Ok(data.expect("no problems means every field parsed"))
    }
}

impl EventPatch {
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.city.is_none()
            && self.category.is_none()
            && self.venue.is_none()
            && self.tags.is_none()
            && self.starts_at.is_none()
            && self.ends_at.is_none()
            && self.capacity.is_none()
            && self.hot.is_none()
    }

    /// `current` with this patch applied, validated as a whole. A start time must be in the
    /// future only when the patch sets it.
    pub fn apply(&self, current: &EventData, now: OffsetDateTime) -> Result<EventData, ApiError> {
        let mut p = Problems::default();
        let (starts, ends) = (utc(current.starts_at), utc(current.ends_at));
        let data = fields(
            &mut p,
            Fields {
                title: self.title.as_deref().unwrap_or(&current.title),
                description: self.description.as_deref().unwrap_or(&current.description),
                city: self.city.as_deref().unwrap_or(&current.city),
                category: self.category.as_deref().unwrap_or(&current.category),
                venue: self.venue.as_deref().unwrap_or(&current.venue),
                tags: self.tags.as_deref().unwrap_or(&current.tags),
                starts_at: self.starts_at.as_deref().unwrap_or(&starts),
                ends_at: self.ends_at.as_deref().unwrap_or(&ends),
                capacity: self.capacity.unwrap_or(current.capacity),
                hot: self.hot.unwrap_or(current.hot),
            },
            now,
            self.starts_at.is_some(),
        );
        p.into_result()?;
        Ok(data.expect("no problems means every field parsed"))
    }
}

struct Fields<'a> {
    title: &'a str,
    description: &'a str,
    city: &'a str,
    category: &'a str,
    venue: &'a str,
    tags: &'a [String],
    starts_at: &'a str,
    ends_at: &'a str,
    capacity: u32,
    hot: bool,
}

fn fields(
    p: &mut Problems,
    f: Fields<'_>,
    now: OffsetDateTime,
    start_in_future: bool,
) -> Option<EventData> {
    let title = text(p, "title", f.title, 3, 120);
    let description = text(p, "description", f.description, 0, 5000);
    let city = label(p, "city", f.city, 80);
    let venue = text(p, "venue", f.venue, 1, 200);
    let category = normalise(f.category);
    if !CATEGORIES.contains(&category.as_str()) {
        p.add(
            "category",
            format!("must be one of {}", CATEGORIES.join(", ")),
        );
    }
    let mut tags: Vec<String> = Vec::new();
    if f.tags.len() > MAX_TAGS {
        p.add(
            "tags",
            format!("at most {MAX_TAGS} tags, got {}", f.tags.len()),
        );
    }
    for (i, t) in f.tags.iter().enumerate() {
        let t = label(p, &format!("tags[{i}]"), t, 30);
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    if !(1..=MAX_CAPACITY).contains(&f.capacity) {
        p.add("capacity", format!("must be 1 to {MAX_CAPACITY}"));
    }
    let starts = parse_time(f.starts_at)
        .map_err(|e| p.add("starts_at", e))
        .ok();
    let ends = parse_time(f.ends_at).map_err(|e| p.add("ends_at", e)).ok();
    if let Some(s) = starts
        && start_in_future
        && s <= now
    {
        p.add("starts_at", "must be in the future");
    }
    if let (Some(s), Some(e)) = (starts, ends) {
        if e <= s {
            p.add("ends_at", "must be after starts_at");
        } else if e - s > time::Duration::days(MAX_DURATION_DAYS) {
            p.add(
                "ends_at",
                format!("an event lasts at most {MAX_DURATION_DAYS} days"),
            );
        }
    }
    Some(EventData {
        title,
        description,
        city,
        category,
        venue,
        tags,
        starts_at: starts?,
        ends_at: ends?,
        capacity: f.capacity,
        hot: f.hot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::parse("2030-01-01T00:00:00Z", &Rfc3339).unwrap()
    }

    fn valid() -> NewEvent {
        NewEvent {
            title: "Jazz in the park".into(),
            description: "Bring a blanket".into(),
            city: "  New   YORK ".into(),
            category: "Music".into(),
            venue: "Central Park".into(),
            tags: vec!["Jazz".into(), "jazz ".into(), "Outdoor".into()],
            starts_at: "2030-06-01T19:00:00+02:00".into(),
            ends_at: "2030-06-01T23:00:00+02:00".into(),
            capacity: 50,
            hot: false,
        }
    }

    fn fields_named(e: ApiError) -> Vec<String> {
        e.invalid_params.iter().map(|p| p.name.clone()).collect()
    }

    #[test]
    fn a_valid_event_is_normalised() {
        let d = valid().validate(now()).unwrap();
        assert_eq!(d.city, "new york");
        assert_eq!(d.category, "music");
        assert_eq!(d.tags, vec!["jazz", "outdoor"]);
        assert_eq!(utc(d.starts_at), "2030-06-01T17:00:00Z");
    }

    #[test]
    fn every_invalid_field_is_named() {
        let e = NewEvent {
            title: "ab".into(),
            category: "raves".into(),
            capacity: 0,
            starts_at: "2029-01-01T00:00:00Z".into(),
            ends_at: "tomorrow".into(),
            tags: (0..11).map(|i| format!("t{i}")).collect(),
            ..valid()
        }
        .validate(now())
        .unwrap_err();
        let names = fields_named(e);
        for f in [
            "title",
            "category",
            "capacity",
            "starts_at",
            "ends_at",
            "tags",
        ] {
            assert!(names.contains(&f.to_owned()), "{f} in {names:?}");
        }
    }

    #[test]
    fn times_need_an_offset_an_order_and_at_most_30_days() {
        for (s, e, field) in [
            ("2030-06-01T19:00:00", "2030-06-01T20:00:00Z", "starts_at"),
            ("2030-06-01T19:00:00Z", "2030-06-01T19:00:00Z", "ends_at"),
            ("2030-06-01T19:00:00Z", "2030-07-02T19:00:00Z", "ends_at"),
        ] {
            let err = NewEvent {
                starts_at: s.into(),
                ends_at: e.into(),
                ..valid()
            }
            .validate(now())
            .unwrap_err();
            assert_eq!(fields_named(err), vec![field.to_owned()], "{s} {e}");
        }
    }

    #[test]
    fn a_patch_keeps_what_it_does_not_name_and_validates_the_whole() {
        let d = valid().validate(now()).unwrap();
        let p = EventPatch {
            title: Some("Late jazz".into()),
            ..Default::default()
        };
        let n = p.apply(&d, now()).unwrap();
        assert_eq!(n.title, "Late jazz");
        assert_eq!(n.starts_at, d.starts_at);
        let bad = EventPatch {
            ends_at: Some("2030-06-01T10:00:00Z".into()),
            ..Default::default()
        };
        assert_eq!(
            fields_named(bad.apply(&d, now()).unwrap_err()),
            vec!["ends_at".to_owned()]
        );
    }

    #[test]
    fn etags_round_trip() {
        assert_eq!(etag_version(&etag(7, 3, 1)), Some(7));
        assert_eq!(etag(7, 3, 1), "W/\"v7.3.1\"");
        assert_eq!(etag_version("\"v7\""), Some(7));
        assert_eq!(etag_version("W/\"v7.3\""), None);
        assert_eq!(etag_version("W/\"v7.3.1.0\""), None);
        assert!(none_match("W/\"v7.3.1\"", &etag(7, 3, 1)));
        assert!(none_match("\"x\", \"v7.3.1\"", &etag(7, 3, 1)));
        assert!(none_match(" * ", "W/\"p1\""));
        assert!(!none_match("W/\"v7.3.0\"", &etag(7, 3, 1)));
        assert_eq!(etag_version("W/\"v7\""), Some(7));
        assert_eq!(etag_version("*"), None);
    }

    proptest! {
        #[test]
        fn titles_are_valid_exactly_when_3_to_120_characters(t in "\\PC{0,130}") {
            let r = NewEvent { title: t.clone(), ..valid() }.validate(now());
            let n = t.nfkc().collect::<String>().trim().chars().count();
            prop_assert_eq!(r.is_ok(), (3..=120).contains(&n) && !t.chars().any(char::is_control));
        }

        #[test]
        fn capacity_is_valid_exactly_in_range(c in 0u32..200_000) {
            let r = NewEvent { capacity: c, ..valid() }.validate(now());
            prop_assert_eq!(r.is_ok(), (1..=MAX_CAPACITY).contains(&c));
        }

        #[test]
        fn normalising_is_idempotent(s in "\\PC{0,60}") {
            prop_assert_eq!(normalise(&normalise(&s)), normalise(&s));
        }

        #[test]
        fn ids_parse_only_in_the_issued_shape(s in "\\PC{0,40}") {
            let ok = parse_id(&s).is_ok();
            let shaped = s.len() == 32 && s.starts_with("evt_") && s[4..].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
            prop_assert_eq!(ok, shaped);
        }

        #[test]
        fn utc_output_parses_back_to_the_same_instant(secs in 0i64..4_000_000_000, off in -43_200i32..50_400) {
            let offset = time::UtcOffset::from_whole_seconds(off - off % 60).unwrap();
            let t = OffsetDateTime::from_unix_timestamp(secs).unwrap().to_offset(offset);
            prop_assert_eq!(parse_time(&utc(t)).unwrap(), t);
        }
    }
}
