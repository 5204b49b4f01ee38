//! Host bindings of the guest contract (`guests/wit/goru.wit`, world `guest`).

wasmtime::component::bindgen!({
    path: "guests/wit",
    world: "guest",
    imports: { default: async | trappable },
    exports: { default: async },
});
