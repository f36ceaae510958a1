//! The Web Console at a server's size: `host-sim serve` on 100,000 devices,
//! its pages requested over HTTP as a browser would (the token in a cookie), each page
//! several times: the median time from request to the last byte, and the slowest page's.

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::mpsc,
    time::{Duration, Instant},
};

use plugin_api::{loader::Plugin, LogRetention};

use crate::report::median;

/// The pages a console session goes through, on `devices` devices.
fn pages(devices: usize) -> Vec<String> {
    vec![
        "/devices".into(),
        format!("/devices?page={}", devices / 100),
        "/devices?status=warning&page=3".into(),
        "/devices?group=/".into(),
        format!("/devices/{}", devices - 1),
        "/api/devices?page=7".into(),
        "/api/groups".into(),
        "/events".into(),
        "/server".into(),
        "/policies".into(),
        "/groups".into(),
        "/consent".into(),
        format!("/consent?page={}", devices / 200),
        "/api/consent".into(),
        "/actions".into(),
    ]
}

fn get(authority: &str, path: &str, cookie: &str) -> Result<(), String> {
    let mut stream = TcpStream::connect(authority).map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    if !response.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "{path}: {}",
            String::from_utf8_lossy(&response[..response.len().min(200)])
        ));
    }
    Ok(())
}

/// The median page time in ms over `rounds` of every page, and the slowest page's median.
pub fn page_ms(plugin: Plugin, devices: usize, rounds: usize) -> Result<(f64, f64), String> {
    let shell = host_sim::shell::Shell::new(plugin, devices, None, LogRetention::DEFAULT)?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let options = host_sim::web::Options {
            bind: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 0,
            limits: host_sim::web::listen::Limits::default(),
        };
        if let Err(e) = host_sim::web::serve(shell, options, |url| {
            let _ = tx.send(url.to_string());
        }) {
            eprintln!("console: {e}");
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(600))
        .map_err(|_| "the console did not start".to_string())?;
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let cookie = format!("ksn_console={}", url.split("token=").nth(1).unwrap_or(""));
    let mut all = Vec::new();
    let mut slowest: f64 = 0.0;
    for page in &pages(devices.max(1)) {
        get(&authority, page, &cookie)?; // warm
        let times: Vec<f64> = (0..rounds)
            .map(|_| {
                let started = Instant::now();
                get(&authority, page, &cookie).map(|()| started.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<Result<_, _>>()?;
        slowest = slowest.max(median(times.clone()));
        all.extend(times);
    }
    Ok((median(all), slowest))
}
