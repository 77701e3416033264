//! The message the side-by-side publishes (`lean --publish` to nchan, and `floor`): JSON of a
//! given size that carries what `lean` reads, its `emitted_at_ms` and a cursor. Shared by both
//! binaries so that nchan and the floor carry the very same bytes.

/// `{"emitted_at_ms":…,"cursor":"<ms>-<seq>","pad":"xx…"}`, padded to `size` bytes. The cursor
/// goes up across runs too (nchan may still hold an earlier run's messages).
pub fn payload(size: usize, seq: u64) -> String {
    let emitted = livescore_store::now_ms();
    let mut json =
        format!("{{\"emitted_at_ms\":{emitted},\"cursor\":\"{emitted}-{seq}\",\"pad\":\"");
    let pad = size.saturating_sub(json.len() + 2);
    json.extend(std::iter::repeat_n('x', pad));
    json.push_str("\"}");
    json
}

/// `{"emitted_at_ms":…,"pad":"xx…"}`, padded to `size` bytes: for a livescore replica, whose
/// cursors are its store's.
#[allow(dead_code)] // `floor` includes this file too, and needs only `payload`.
pub fn uncursored_payload(size: usize) -> String {
    let emitted = livescore_store::now_ms();
    let mut json = format!("{{\"emitted_at_ms\":{emitted},\"pad\":\"");
    let pad = size.saturating_sub(json.len() + 2);
    json.extend(std::iter::repeat_n('x', pad));
    json.push_str("\"}");
    json
}
