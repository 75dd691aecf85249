//! Writes a frame made of chunks (`Outgoing::Chunks`) with `sendmsg` over
//! all of them at once, as glommio writes single buffers: a non-blocking
//! send first, and when the socket is full the rest of the current chunk
//! goes through the stream's own write, which waits for the socket to drain.
//! One syscall per response in the common case, and the record batches are
//! sent from where the log holds them.

use std::io;
use std::os::fd::RawFd;

use bytes::Bytes;
use futures::io::{AsyncWriteExt, WriteHalf};
use glommio::net::TcpStream;

/// Chunks passed to one `sendmsg` (IOV_MAX is 1,024 on Linux).
const IOVECS_PER_SEND: usize = 256;

/// Writes every chunk, in order, to the connection whose descriptor is `fd`
/// and whose write half is `writer`.
pub async fn write_chunks(
    writer: &mut WriteHalf<TcpStream>,
    fd: RawFd,
    chunks: &[Bytes],
) -> io::Result<()> {
    // The position: chunk `index`, of which `offset` bytes are sent.
    let mut index = 0;
    let mut offset = 0;
    while index < chunks.len() {
        match send_from(fd, chunks, index, offset) {
            Ok(sent) => (index, offset) = advance(chunks, index, offset, sent),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                // The socket is full: wait for room through the stream.
                let rest = chunks[index].slice(offset..);
                writer.write_all(&rest).await?;
                (index, offset) = (index + 1, 0);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
        while index < chunks.len() && offset == chunks[index].len() {
            (index, offset) = (index + 1, 0);
        }
    }
    Ok(())
}

/// One non-blocking `sendmsg` of the chunks from `index` (`offset` bytes
/// into it); how many bytes the socket took.
fn send_from(fd: RawFd, chunks: &[Bytes], index: usize, offset: usize) -> io::Result<usize> {
    let mut iovecs: Vec<libc::iovec> =
        Vec::with_capacity((chunks.len() - index).min(IOVECS_PER_SEND));
    for (position, chunk) in chunks[index..].iter().take(IOVECS_PER_SEND).enumerate() {
        let skip = if position == 0 { offset } else { 0 };
        let rest = &chunk[skip..];
        if rest.is_empty() {
            continue;
        }
        iovecs.push(libc::iovec {
            iov_base: rest.as_ptr() as *mut libc::c_void,
            iov_len: rest.len(),
        });
    }
    if iovecs.is_empty() {
        return Ok(0);
    }
    // SAFETY: a zeroed msghdr is valid (no address, no control data); the
    // iovecs point into `chunks`, which outlive the call.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = iovecs.as_mut_ptr();
    message.msg_iovlen = iovecs.len();
    // SAFETY: `message` is a valid msghdr for the duration of the call.
    let sent = unsafe { libc::sendmsg(fd, &message, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let sent = usize::try_from(sent).unwrap_or(0);
    if sent == 0 {
        return Err(io::Error::from(io::ErrorKind::WriteZero));
    }
    Ok(sent)
}

/// The position `sent` bytes further on.
fn advance(
    chunks: &[Bytes],
    mut index: usize,
    mut offset: usize,
    mut sent: usize,
) -> (usize, usize) {
    while sent > 0 && index < chunks.len() {
        let left = chunks[index].len() - offset;
        if sent < left {
            return (index, offset + sent);
        }
        sent -= left;
        (index, offset) = (index + 1, 0);
    }
    (index, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_walks_over_chunk_boundaries() {
        let chunks = vec![
            Bytes::from_static(b"abcd"),
            Bytes::new(),
            Bytes::from_static(b"ef"),
            Bytes::from_static(b"ghijk"),
        ];
        assert_eq!(advance(&chunks, 0, 0, 3), (0, 3));
        assert_eq!(advance(&chunks, 0, 3, 1), (1, 0));
        assert_eq!(advance(&chunks, 0, 0, 5), (2, 1));
        assert_eq!(advance(&chunks, 2, 1, 1), (3, 0));
        assert_eq!(advance(&chunks, 0, 0, 11), (4, 0));
    }

    #[test]
    fn chunks_arrive_whole_and_in_order_through_a_small_socket_buffer() {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let chunks: Vec<Bytes> = (0..40u8)
            .map(|seed| Bytes::from(vec![seed; 1_000 + usize::from(seed) * 997]))
            .collect();
        let expected: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        let total = expected.len();
        // A reader that starts late, so the sender's socket fills up.
        let reader = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().expect("accept");
            std::thread::sleep(std::time::Duration::from_millis(200));
            let mut received = Vec::with_capacity(total);
            let mut buffer = [0u8; 4096];
            while received.len() < total {
                let read = socket.read(&mut buffer).expect("read");
                assert!(read > 0, "closed early");
                received.extend_from_slice(&buffer[..read]);
            }
            received
        });
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                use std::os::fd::AsRawFd;
                let stream = TcpStream::connect(address).await.expect("connect");
                let fd = stream.as_raw_fd();
                // SAFETY: setsockopt on a descriptor this test owns.
                unsafe {
                    let small: libc::c_int = 4096;
                    libc::setsockopt(
                        fd,
                        libc::SOL_SOCKET,
                        libc::SO_SNDBUF,
                        (&small as *const libc::c_int).cast(),
                        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                    );
                }
                let (_reader, mut writer) = futures::AsyncReadExt::split(stream);
                write_chunks(&mut writer, fd, &chunks).await.expect("write");
            })
            .expect("executor")
            .join()
            .expect("join");
        assert_eq!(reader.join().expect("reader"), expected);
    }
}
