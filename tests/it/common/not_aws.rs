//! An endpoint that is not AWS: every request gets HTTP 404 with an HTML page, as a web server
//! or an emulator that does not know the operation answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

pub const PAGE: &str = "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n\
     <body><h1>Not Found</h1><p>The requested URL was not found on the server.</p></body></html>\n";

/// Starts the server on 127.0.0.1; its endpoint URL. The thread ends with the test binary.
pub fn start() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = write!(
                stream,
                "HTTP/1.1 404 NOT FOUND\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{PAGE}",
                PAGE.len()
            );
        }
    });
    endpoint
}
