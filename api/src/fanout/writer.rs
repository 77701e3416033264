//! Writing many sockets at once: one `sendmsg` per socket (that socket's messages as one vector
//! of at most [`IOV_MAX`] parts), submitted either as that many system calls or through
//! io_uring, where up to 4,096 sockets are one `io_uring_enter`.
//!
//! Every write is non-blocking (`MSG_DONTWAIT`): a socket whose buffer is full takes what it can
//! and the outbox keeps the rest for it (see `outbox.rs`). `MSG_NOSIGNAL`: a viewer gone away is
//! an error to read, not a signal.
//!
//! io_uring reads the buffers after the call that queued them, until each send completes. So a
//! submission is only over when every send it queued has completed: if the ring fails with
//! sends still in flight, the ring and everything those sends point at are kept alive for good
//! (`Retired`) and the writer goes on with system calls.

use std::ops::Range;
use std::os::fd::RawFd;

use axum::body::Bytes;

/// The most parts one `sendmsg` takes (Linux's `UIO_MAXIOV`): more fail with `EMSGSIZE`.
pub const IOV_MAX: usize = libc::UIO_MAXIOV as usize;

/// Submission queue entries of a shard's ring: the sockets one `io_uring_enter` writes to.
const RING_ENTRIES: u32 = 4096;

const FLAGS: libc::c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;

/// Submits what the ring holds and waits for `want` completions: `io_uring_enter`, or a stand-in
/// that fails (tests).
type Enter = fn(&mut io_uring::IoUring, usize) -> std::io::Result<usize>;

/// How the engine writes to its sockets.
pub struct Writer {
    mode: Mode,
    /// Rings given up on with sends in flight, kept alive for good with their buffers.
    retired: usize,
}

enum Mode {
    /// One io_uring submission per 4,096 sockets.
    Uring {
        ring: Box<io_uring::IoUring>,
        enter: Enter,
    },
    /// One `sendmsg` system call per socket.
    Syscall,
}

/// A ring that failed with sends in flight, and what they read: never dropped.
struct Retired {
    _ring: Box<io_uring::IoUring>,
    _parts: Vec<Bytes>,
    _iovecs: Vec<libc::iovec>,
    _headers: Vec<libc::msghdr>,
}

/// One socket's write: its descriptor and the range of the batch's parts it gets (at most
/// [`IOV_MAX`]).
pub struct Write {
    pub fd: RawFd,
    pub parts: Range<usize>,
}

/// A batch's `iovec`s and `msghdr`s, kept between batches so their memory is reused.
#[derive(Default)]
pub struct Scratch {
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::msghdr>,
}

/// The ring failed with `in_flight` sends not completed.
struct Unfinished {
    error: std::io::Error,
    in_flight: usize,
}

impl Writer {
    /// io_uring if asked for and the kernel allows it, else system calls.
    pub fn new(uring: bool) -> Writer {
        let mode = if uring {
            Self::ring().map_or(Mode::Syscall, |ring| Mode::Uring {
                ring,
                enter: |ring, want| ring.submit_and_wait(want),
            })
        } else {
            Mode::Syscall
        };
        Writer { mode, retired: 0 }
    }

    fn ring() -> Option<Box<io_uring::IoUring>> {
        match io_uring::IoUring::builder()
            .setup_cqsize(RING_ENTRIES * 2)
            .build(RING_ENTRIES)
        {
            Ok(ring) => Some(Box::new(ring)),
            Err(err) => {
                tracing::warn!("io_uring is not available ({err}): one sendmsg per socket");
                None
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self.mode {
            Mode::Uring { .. } => "io_uring",
            Mode::Syscall => "sendmsg",
        }
    }

    /// Writes `parts[write.parts]` to each `write.fd`; `results[i]` is the bytes the i-th socket
    /// took, or a negated errno (`-EAGAIN`: none, its buffer is full).
    pub fn send(
        &mut self,
        writes: &[Write],
        parts: &[Bytes],
        scratch: &mut Scratch,
        results: &mut Vec<isize>,
    ) {
        results.clear();
        results.resize(writes.len(), -(libc::EIO as isize));
        scratch.iovecs.clear();
        scratch.iovecs.extend(parts.iter().map(|part| libc::iovec {
            iov_base: part.as_ptr() as *mut libc::c_void,
            iov_len: part.len(),
        }));
        scratch.headers.clear();
        let base = scratch.iovecs.as_mut_ptr();
        for write in writes {
            debug_assert!(
                write.parts.len() <= IOV_MAX,
                "a write of more than IOV_MAX parts"
            );
            debug_assert!(write.parts.end <= parts.len());
            // SAFETY: msghdr is plain data; all-zero is a valid empty header.
            let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
            // SAFETY: `parts` (and so `iovecs`) has at least `write.parts.end` entries.
            header.msg_iov = unsafe { base.add(write.parts.start) };
            header.msg_iovlen = write.parts.len().min(IOV_MAX) as _;
            scratch.headers.push(header);
        }
        match &mut self.mode {
            Mode::Syscall => {
                for ((write, header), result) in writes.iter().zip(&scratch.headers).zip(results) {
                    *result = sendmsg(write.fd, header);
                }
            }
            Mode::Uring { ring, enter } => {
                let Err(unfinished) = submit(ring, *enter, writes, &scratch.headers, results)
                else {
                    return;
                };
                // Not seen here. The sockets of this batch that got no answer are closed
                // (their viewers resume with their cursors), and later batches use system calls.
                tracing::error!(
                    in_flight = unfinished.in_flight,
                    "io_uring failed ({}): one sendmsg per socket from now on",
                    unfinished.error
                );
                let Mode::Uring { ring, .. } = std::mem::replace(&mut self.mode, Mode::Syscall)
                else {
                    return;
                };
                if unfinished.in_flight > 0 {
                    // The kernel may still read these buffers: they, and the ring, stay.
                    Box::leak(Box::new(Retired {
                        _ring: ring,
                        _parts: parts.to_vec(),
                        _iovecs: std::mem::take(&mut scratch.iovecs),
                        _headers: std::mem::take(&mut scratch.headers),
                    }));
                    self.retired += 1;
                }
            }
        }
    }

    /// Rings given up on with sends in flight (kept alive with their buffers).
    pub fn retired(&self) -> usize {
        self.retired
    }
}

/// `sendmsg` once: the bytes taken, or a negated errno.
pub fn sendmsg(fd: RawFd, header: &libc::msghdr) -> isize {
    // SAFETY: `header` points at iovecs over live buffers (the caller's `Bytes`).
    let sent = unsafe { libc::sendmsg(fd, header, FLAGS) };
    if sent < 0 {
        -(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO) as isize)
    } else {
        sent
    }
}

/// `sendmsg` of the first [`IOV_MAX`] of `parts` to one socket.
pub fn sendmsg_parts(fd: RawFd, parts: &[Bytes]) -> isize {
    let iovecs: Vec<libc::iovec> = parts
        .iter()
        .take(IOV_MAX)
        .map(|part| libc::iovec {
            iov_base: part.as_ptr() as *mut libc::c_void,
            iov_len: part.len(),
        })
        .collect();
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_iov = iovecs.as_ptr() as *mut libc::iovec;
    header.msg_iovlen = iovecs.len() as _;
    sendmsg(fd, &header)
}

/// Consecutive `io_uring_enter` failures that leave no doubt (`EAGAIN`, `EBUSY`: the kernel is
/// short of memory, or completions must be reaped first) tried again before giving up.
const ENTER_RETRIES: usize = 100;

/// Queues a `SendMsg` per socket, up to the ring's size at a time, and waits for every one of
/// them to complete (at once: the sends do not block). Fails only with what is still in flight.
fn submit(
    ring: &mut io_uring::IoUring,
    enter: Enter,
    writes: &[Write],
    headers: &[libc::msghdr],
    results: &mut [isize],
) -> Result<(), Unfinished> {
    use io_uring::{opcode, types};
    let depth = ring.params().sq_entries() as usize;
    for (chunk_index, chunk) in writes.chunks(depth).enumerate() {
        let first = chunk_index * depth;
        let mut queued = 0;
        for (offset, write) in chunk.iter().enumerate() {
            let index = first + offset;
            let send = opcode::SendMsg::new(types::Fd(write.fd), &headers[index])
                .flags(FLAGS as u32)
                .build()
                .user_data(index as u64);
            // SAFETY: the header and the buffers it points at outlive the send: this function
            // returns once every send it queued has completed, or the caller keeps them alive
            // for good (`Retired`).
            if unsafe { ring.submission().push(&send) }.is_ok() {
                queued += 1;
            }
        }
        let mut completed = 0;
        let mut retries = 0;
        while completed < queued {
            let entered = enter(ring, queued - completed);
            for completion in ring.completion() {
                if let Some(result) = results.get_mut(completion.user_data() as usize) {
                    *result = completion.result() as isize;
                }
                completed += 1;
            }
            match entered {
                Ok(_) => retries = 0,
                Err(err) if err.raw_os_error() == Some(libc::EINTR) => {}
                Err(err)
                    if matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::EBUSY))
                        && retries < ENTER_RETRIES =>
                {
                    retries += 1;
                }
                Err(error) => {
                    return Err(Unfinished {
                        error,
                        in_flight: queued - completed,
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    /// Three sockets, and a batch giving the first one part, the second two, the third three.
    fn three_sockets() -> (Vec<(UnixStream, UnixStream)>, Vec<Bytes>, Vec<Write>) {
        let pairs: Vec<_> = (0..3).map(|_| UnixStream::pair().unwrap()).collect();
        let parts: Vec<Bytes> = [b"a1", b"b1", b"b2", b"c1", b"c2", b"c3"]
            .into_iter()
            .map(|part| Bytes::from_static(part))
            .collect();
        let writes: Vec<Write> = [0..1, 1..3, 3..6]
            .into_iter()
            .zip(&pairs)
            .map(|(parts, (ours, _))| Write {
                fd: ours.as_raw_fd(),
                parts,
            })
            .collect();
        (pairs, parts, writes)
    }

    fn received(pairs: Vec<(UnixStream, UnixStream)>) -> Vec<String> {
        pairs
            .into_iter()
            .map(|(_, mut theirs)| {
                let mut buf = [0u8; 16];
                let n = theirs.read(&mut buf).unwrap();
                String::from_utf8_lossy(&buf[..n]).into_owned()
            })
            .collect()
    }

    /// Both writers deliver each socket its own parts, in order, and say so.
    #[test]
    fn each_socket_gets_its_parts_in_order() {
        for uring in [false, true] {
            let mut writer = Writer::new(uring);
            let (pairs, parts, writes) = three_sockets();
            let mut results = Vec::new();
            writer.send(&writes, &parts, &mut Scratch::default(), &mut results);
            assert_eq!(results, vec![2, 4, 6], "{}", writer.name());
            assert_eq!(received(pairs), ["a1", "b1b2", "c1c2c3"]);
        }
    }

    #[test]
    fn a_closed_socket_is_an_error_not_a_signal() {
        for uring in [false, true] {
            let mut writer = Writer::new(uring);
            let (ours, theirs) = UnixStream::pair().unwrap();
            drop(theirs);
            let parts = [Bytes::from_static(b"x")];
            let mut results = Vec::new();
            writer.send(
                &[Write {
                    fd: ours.as_raw_fd(),
                    parts: 0..1,
                }],
                &parts,
                &mut Scratch::default(),
                &mut results,
            );
            assert_eq!(results, vec![-(libc::EPIPE as isize)]);
        }
    }

    /// A writer on io_uring whose `io_uring_enter` is `enter`.
    fn uring_entering_with(enter: Enter) -> Writer {
        Writer {
            mode: Mode::Uring {
                ring: Writer::ring().unwrap(),
                enter,
            },
            retired: 0,
        }
    }

    #[test]
    fn a_ring_failing_with_sends_in_flight_keeps_their_buffers_for_good() {
        // The kernel never saw the sends: as far as the writer can tell, they are in flight.
        let mut writer =
            uring_entering_with(|_, _| Err(std::io::Error::from_raw_os_error(libc::EBADF)));
        let (_pairs, parts, writes) = three_sockets();
        let parts: Vec<Bytes> = parts.iter().map(|p| Bytes::copy_from_slice(p)).collect();
        let mut results = Vec::new();
        writer.send(&writes, &parts, &mut Scratch::default(), &mut results);
        assert_eq!(results, vec![-(libc::EIO as isize); 3], "no answer: closed");
        assert_eq!(writer.name(), "sendmsg", "system calls from now on");
        assert_eq!(writer.retired(), 1);
        assert!(
            parts.into_iter().all(|part| !part.is_unique()),
            "the kernel may still read them: the retired ring holds them"
        );
    }

    #[test]
    fn a_ring_failing_once_every_send_completed_keeps_nothing() {
        let mut writer = uring_entering_with(|ring, want| {
            ring.submit_and_wait(want)?;
            Err(std::io::Error::from_raw_os_error(libc::EBADF))
        });
        let (pairs, parts, writes) = three_sockets();
        let parts: Vec<Bytes> = parts.iter().map(|p| Bytes::copy_from_slice(p)).collect();
        let mut results = Vec::new();
        writer.send(&writes, &parts, &mut Scratch::default(), &mut results);
        assert_eq!(
            results,
            vec![2, 4, 6],
            "every send completed and was counted"
        );
        assert_eq!(writer.name(), "sendmsg");
        assert_eq!(writer.retired(), 0);
        assert!(parts.into_iter().all(|part| part.is_unique()));
        assert_eq!(received(pairs), ["a1", "b1b2", "c1c2c3"]);
    }
}
