//! gobdump: reads a gob stream on stdin and prints every message as one JSON
//! line: `{"msg":"type","id":N,"wire":{...}}` for each type definition and
//! `{"msg":"value","id":N,"value":...}` for each value, in the dump format of
//! tests/conformance/README.md. For reading captured plugin traffic (one
//! direction of one net/rpc stream at a time) and for the Go cross-checks.
//!
//! Exit status: 0 at a clean end of stream, 1 on a decode error (reported on
//! stderr after the lines decoded so far).

use std::io::Write;

use claude_code::rpc::gob::stream::StreamDecoder;
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut stream = StreamDecoder::new(tokio::io::stdin());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    loop {
        match stream.decode_value().await {
            Ok(Some(decoded)) => {
                for id in &decoded.defined {
                    if let Some(wt) = stream.decoder().wire_type(*id) {
                        let line = json!({"msg": "type", "id": id, "wire": wt.to_dump()});
                        let _ = writeln!(out, "{line}");
                    }
                }
                let line =
                    json!({"msg": "value", "id": decoded.id, "value": decoded.value.to_dump()});
                let _ = writeln!(out, "{line}");
            }
            Ok(None) => break,
            Err(e) => {
                let _ = out.flush();
                eprintln!("gobdump: {e}");
                std::process::exit(1);
            }
        }
    }
    let _ = out.flush();
}
