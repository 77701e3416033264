//! Writing a sweep's messages to many sockets at once: one `sendmsg` per socket (all of that
//! socket's messages as one vector), submitted either as that many system calls or through
//! io_uring, where a whole sweep of up to 4,096 sockets is one `io_uring_enter`.
//!
//! Every write is non-blocking (`MSG_DONTWAIT`): a socket whose buffer is full takes what it can
//! and the engine keeps the rest for it (see `engine.rs`). `MSG_NOSIGNAL`: a viewer gone away is
//! an error to read, not a signal.

use std::ops::Range;
use std::os::fd::RawFd;

use axum::body::Bytes;

/// How the engine writes its sweeps.
pub enum Writer {
    /// One io_uring submission per sweep (per 4,096 sockets).
    Uring(Box<io_uring::IoUring>),
    /// One `sendmsg` system call per socket.
    Syscall,
}

/// Submission queue entries of a shard's ring: the sockets one `io_uring_enter` writes to.
const RING_ENTRIES: u32 = 4096;

const FLAGS: libc::c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;

/// One socket's part of a sweep: its descriptor and the range of the sweep's buffers it gets.
pub struct Write {
    pub fd: RawFd,
    pub parts: Range<usize>,
}

/// The sweep's `iovec`s and `msghdr`s, kept between sweeps so their memory is reused.
#[derive(Default)]
pub struct Scratch {
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::msghdr>,
}

impl Writer {
    /// io_uring if asked for and the kernel allows it, else system calls.
    pub fn new(uring: bool) -> Writer {
        if !uring {
            return Writer::Syscall;
        }
        match io_uring::IoUring::builder()
            .setup_cqsize(RING_ENTRIES * 2)
            .build(RING_ENTRIES)
        {
            Ok(ring) => Writer::Uring(Box::new(ring)),
            Err(err) => {
                tracing::warn!("io_uring is not available ({err}): one sendmsg per socket");
                Writer::Syscall
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Writer::Uring(_) => "io_uring",
            Writer::Syscall => "sendmsg",
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
        results.resize(writes.len(), 0);
        scratch.iovecs.clear();
        scratch.iovecs.extend(parts.iter().map(|part| libc::iovec {
            iov_base: part.as_ptr() as *mut libc::c_void,
            iov_len: part.len(),
        }));
        scratch.headers.clear();
        let base = scratch.iovecs.as_mut_ptr();
        for write in writes {
            // SAFETY: msghdr is plain data; all-zero is a valid empty header.
            let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
            // SAFETY: `parts` (and so `iovecs`) has at least `write.parts.end` entries.
            header.msg_iov = unsafe { base.add(write.parts.start) };
            header.msg_iovlen = write.parts.len() as _;
            scratch.headers.push(header);
        }
        match self {
            Writer::Syscall => {
                for ((write, header), result) in writes.iter().zip(&scratch.headers).zip(results) {
                    *result = sendmsg(write.fd, header);
                }
            }
            Writer::Uring(ring) => {
                if let Err(err) = submit(ring, writes, &scratch.headers, results) {
                    // Not seen here; if it happens, the sockets of this sweep that got no answer
                    // are closed (their viewers resume with their cursors) and later sweeps use
                    // system calls.
                    tracing::error!("io_uring failed ({err}): one sendmsg per socket from now on");
                    *self = Writer::Syscall;
                }
            }
        }
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

/// `sendmsg` of `parts` to one socket.
pub fn sendmsg_parts(fd: RawFd, parts: &[Bytes]) -> isize {
    let iovecs: Vec<libc::iovec> = parts
        .iter()
        .take(1024)
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

/// Queues a `SendMsg` per socket, up to the ring's size at a time, and waits for their
/// completions (immediate: the sends do not block).
fn submit(
    ring: &mut io_uring::IoUring,
    writes: &[Write],
    headers: &[libc::msghdr],
    results: &mut [isize],
) -> std::io::Result<()> {
    use io_uring::{opcode, types};
    let depth = ring.params().sq_entries() as usize;
    let mut failed = None;
    for (chunk_index, chunk) in writes.chunks(depth).enumerate() {
        let first = chunk_index * depth;
        if failed.is_some() {
            for result in &mut results[first..first + chunk.len()] {
                *result = -(libc::EIO as isize);
            }
            continue;
        }
        for (offset, write) in chunk.iter().enumerate() {
            let index = first + offset;
            let send = opcode::SendMsg::new(types::Fd(write.fd), &headers[index])
                .flags(FLAGS as u32)
                .build()
                .user_data(index as u64);
            // SAFETY: the header and the buffers it points at outlive the submission: this
            // function waits for every completion before returning.
            if unsafe { ring.submission().push(&send) }.is_err() {
                results[index] = -(libc::EIO as isize);
            }
        }
        let mut waited = 0;
        while waited < chunk.len() {
            match ring.submit_and_wait(chunk.len() - waited) {
                Ok(_) => {}
                Err(err) if err.raw_os_error() == Some(libc::EINTR) => {}
                Err(err) => {
                    failed = Some(err);
                    break;
                }
            }
            for completion in ring.completion() {
                if let Some(result) = results.get_mut(completion.user_data() as usize) {
                    *result = completion.result() as isize;
                }
                waited += 1;
            }
        }
        if failed.is_some() {
            for result in &mut results[first..first + chunk.len()] {
                if *result == 0 {
                    *result = -(libc::EIO as isize);
                }
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    /// Both writers deliver each socket its own parts, in order, and say so.
    #[test]
    fn each_socket_gets_its_parts_in_order() {
        for uring in [false, true] {
            let mut writer = Writer::new(uring);
            let pairs: Vec<_> = (0..3)
                .map(|_| std::os::unix::net::UnixStream::pair().unwrap())
                .collect();
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
            let mut results = Vec::new();
            writer.send(&writes, &parts, &mut Scratch::default(), &mut results);
            assert_eq!(results, vec![2, 4, 6], "{}", writer.name());
            let mut got = Vec::new();
            for (_, mut theirs) in pairs {
                let mut buf = [0u8; 16];
                let n = theirs.read(&mut buf).unwrap();
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            assert_eq!(got, ["a1", "b1b2", "c1c2c3"]);
        }
    }

    #[test]
    fn a_closed_socket_is_an_error_not_a_signal() {
        for uring in [false, true] {
            let mut writer = Writer::new(uring);
            let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
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
}
