//! Byte transport under the reader: a trait so the protocol can be tested without hardware, and the
//! serial-port implementation used in production.

use std::io::{self, Read, Write};
use std::time::Duration;

use serialport::{ClearBuffer, DataBits, FlowControl, Parity, SerialPort, StopBits, TTYPort};
use thiserror::Error;

/// A byte pipe to a reader.
pub trait Transport: Send {
    /// Writes the whole buffer.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Reads what is available, waiting up to `timeout` for the first byte. `Ok(0)` means the
    /// timeout passed with no data; it is never returned early.
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;

    /// Drops any received bytes not yet read (stale replies, line noise).
    fn discard_input(&mut self) -> io::Result<()>;

    /// Changes the line rate (baud probing). Transports without a rate refuse.
    fn set_baud(&mut self, baud: u32) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("this transport has no line rate to set to {baud}"),
        ))
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        (**self).write_all(bytes)
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        (**self).read(buf, timeout)
    }

    fn discard_input(&mut self) -> io::Result<()> {
        (**self).discard_input()
    }

    fn set_baud(&mut self, baud: u32) -> io::Result<()> {
        (**self).set_baud(baud)
    }
}

/// Failure to open a serial port; names the path.
#[derive(Debug, Error)]
pub enum TransportError {
    /// The port could not be opened or configured.
    #[error("cannot open serial port {path} at {baud} baud: {source}")]
    Open {
        /// Path as given.
        path: String,
        /// Baud rate requested.
        baud: u32,
        /// What serialport reported.
        #[source]
        source: serialport::Error,
    },
}

/// A serial port (or pty) opened 8N1 without flow control, exclusive (TIOCEXCL).
#[derive(Debug)]
pub struct SerialTransport {
    port: TTYPort,
}

impl SerialTransport {
    /// Opens `path` at `baud`, 8N1, no flow control.
    pub fn open(path: &str, baud: u32) -> Result<Self, TransportError> {
        let port = serialport::new(path, baud)
            .data_bits(DataBits::Eight)
            .parity(Parity::None)
            .stop_bits(StopBits::One)
            .flow_control(FlowControl::None)
            .timeout(Duration::from_millis(100))
            .open_native()
            .map_err(|source| TransportError::Open {
                path: path.to_owned(),
                baud,
                source,
            })?;
        Ok(Self { port })
    }

    /// The underlying port, for settings this trait does not cover.
    pub fn port(&self) -> &TTYPort {
        &self.port
    }
}

impl Transport for SerialTransport {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(&mut self.port, bytes)?;
        self.port.flush()
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.port.set_timeout(timeout).map_err(io::Error::from)?;
        loop {
            return match Read::read(&mut self.port, buf) {
                Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Raw mode blocks until a byte arrives, so 0 here is end-of-file (hang-up), not a
                // timeout: report it rather than let the caller spin.
                Ok(0) if !buf.is_empty() => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "serial port returned end of file (device gone?)",
                )),
                other => other,
            };
        }
    }

    fn discard_input(&mut self) -> io::Result<()> {
        self.port.clear(ClearBuffer::Input).map_err(io::Error::from)
    }

    fn set_baud(&mut self, baud: u32) -> io::Result<()> {
        self.port.set_baud_rate(baud).map_err(io::Error::from)
    }
}
