//! Fuzzes the audit config parser exactly as `on_configure` runs it
//! (`FilterConfig::parse`): any bytes must give `Ok` or a `ConfigErrors`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshguard_core::audit::config::AuditConfig;
use meshguard_core::config::FilterConfig;

fuzz_target!(|data: &[u8]| {
    match <AuditConfig as FilterConfig>::parse(data) {
        Ok(_) => {}
        Err(errors) => {
            // Rendering the errors is part of what on_configure does (it logs them).
            let _ = errors.to_string();
        }
    }
});
