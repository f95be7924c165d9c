//! Feeds arbitrary bytes to the gob decoder, generically and as the typed
//! hook arguments the plugin receives. Any panic, hang or runaway allocation
//! is a bug: bad bytes must end in a typed error.
#![no_main]

use claude_code::mattermost::model::{Post, Any};
use claude_code::mattermost::rpc_types::{ExecuteCommandArgs, ServeHttpArgs};
use claude_code::rpc::gob::stream::StreamDecoder;
use claude_code::rpc::gob::{Decoder, Limits};
use claude_code::rpc::netrpc::RequestHeader;
use libfuzzer_sys::fuzz_target;

fn limits() -> Limits {
    Limits { max_message: 1 << 20, ..Limits::default() }
}

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let mut generic = StreamDecoder::with_decoder(data, Decoder::new(limits()));
        while let Ok(Some(_)) = generic.decode_value().await {}

        // A net/rpc request stream: header, then the hook's argument.
        let mut typed = StreamDecoder::with_decoder(data, Decoder::new(limits()));
        let _ = typed.decode::<RequestHeader>().await;
        let _ = typed.decode::<ExecuteCommandArgs>().await;
        let _ = typed.decode::<ServeHttpArgs>().await;
        let _ = typed.decode::<Post>().await;
        let _ = typed.decode::<std::collections::BTreeMap<String, Any>>().await;
    });
});
