cfg_if::cfg_if! {
    if #[cfg(unix)] {
        mod unix;
        pub use self::unix::*;
        pub fn platform_name() -> &'static str { "unix" }
    } else {
        pub struct Fallback;
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Handle>> = RefCell::new(None);
}

bitflags! {
    pub struct Flags: u32 {
        const READABLE = 0b01;
    }
}

cfg_rt! {
    pub struct Runtime {
        handle: Handle,
    }

    impl Runtime {
        cfg_metrics! {
            pub fn metrics(&self) -> RuntimeMetrics {
                self.handle.metrics()
            }
        }
    }
}

macro_rules! cfg_metrics {
    ($($item:item)*) => { $( #[cfg(feature = "metrics")] $item )* }
}
