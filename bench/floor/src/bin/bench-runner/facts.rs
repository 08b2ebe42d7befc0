//! What the run learnt beside the rounds ("facts" in the results): what sessions cost in Redis
//! and in memory, and the servers' peak RSS; with the same in words ("notes").

use serde::Serialize;

use crate::memory_server::Ready;
use crate::options::Options;
use crate::phases::fill::{ExtraSessions, FillRecord, Filler};
use crate::phases::growth::Growth;
use crate::phases::logins::LoginFacts;
use crate::phases::memory::Memory;
use crate::phases::scenarios::HwmAfterMain;

#[derive(Debug, Serialize)]
pub struct Facts {
    pub notes: String,
    pub redis: RedisFacts,
    pub rss_kb: RssKb,
    pub memory_store: Vec<MemoryReport>,
}

#[derive(Debug, Serialize)]
pub struct RedisFacts {
    pub session_value_bytes: u64,
    pub session_memory_usage_bytes: u64,
    pub session_1_group_memory_usage_bytes: u64,
    pub session_50_groups_memory_usage_bytes: u64,
    pub sealed_tokens_bytes: u64,
    pub tokens_memory_usage_bytes: Option<u64>,
    pub user_index_memory_usage_bytes: u64,
    pub fills: Vec<FillRecord>,
    pub used_memory_bytes_final: u64,
    pub sessions_final: u64,
}

/// Peak RSS (VmHWM, kB).
#[derive(Debug, Serialize)]
pub struct RssKb {
    pub after_main_phase: HwmAfterMain,
    #[serde(rename = "final")]
    pub at_end: HwmFinal,
}

#[derive(Debug, Serialize)]
pub struct HwmFinal {
    #[serde(rename = "portcullis-redis")]
    pub portcullis_redis: u64,
    #[serde(rename = "portcullis-memory")]
    pub portcullis_memory: u64,
}

/// One filled memory-store server: its own report, and its peak RSS after the rounds.
#[derive(Debug, Serialize)]
pub struct MemoryReport {
    #[serde(flatten)]
    pub ready: Ready,
    pub hwm_kb_after_load: u64,
    /// "as-login" (sealed tokens as the login stored them) or "without-tokens".
    pub variant: String,
}

impl Facts {
    pub fn new(
        options: &Options,
        login: LoginFacts,
        extra: &ExtraSessions,
        filler: Filler,
        hwm_after_main: HwmAfterMain,
        growth: Growth,
        memory: Memory,
    ) -> Facts {
        let redis = RedisFacts {
            session_value_bytes: login.session_len,
            session_memory_usage_bytes: login.session_bytes,
            session_1_group_memory_usage_bytes: extra.session_1_bytes,
            session_50_groups_memory_usage_bytes: extra.session_50_bytes,
            sealed_tokens_bytes: login.sealed_len,
            tokens_memory_usage_bytes: login.tokens_bytes,
            user_index_memory_usage_bytes: login.user_index_bytes,
            fills: filler.records,
            used_memory_bytes_final: growth.redis_used_memory_final,
            sessions_final: filler.sessions_in_redis,
        };
        let rss_kb = RssKb {
            after_main_phase: hwm_after_main,
            at_end: HwmFinal {
                portcullis_redis: growth.hwm_portcullis_redis_final,
                portcullis_memory: memory.hwm_portcullis_memory_final,
            },
        };
        let notes = notes(options, &redis, &rss_kb.after_main_phase, &memory.reports);
        Facts {
            notes,
            redis,
            rss_kb,
            memory_store: memory.reports,
        }
    }
}

fn notes(
    options: &Options,
    redis: &RedisFacts,
    hwm_after_main: &HwmAfterMain,
    memory_reports: &[MemoryReport],
) -> String {
    let memory_note = match memory_reports.first() {
        None => String::new(),
        Some(with_tokens) => format!(
            "memory store with {} sessions (stored as a login stores them): RSS {:.1} MB serving empty -> {:.1} MB filled, peak {:.1} MB under load.",
            options.memory_sessions,
            kb_to_mb(with_tokens.ready.rss_kb_serving_empty),
            kb_to_mb(with_tokens.ready.rss_kb_filled),
            kb_to_mb(with_tokens.hwm_kb_after_load),
        ),
    };
    format!(
        "Redis: session value {} B (MEMORY USAGE {} B; 1 group {} B, 50 groups {} B), \
         sealed tokens {}, user index {} B; \
         used_memory {:.0} MB with {} sessions.\n\
         portcullis peak RSS (VmHWM) after the main phase: Redis store {:.1} MB, memory store {:.1} MB; floors A {:.1} MB, B {:.1} MB.\n{memory_note}",
        redis.session_value_bytes,
        redis.session_memory_usage_bytes,
        redis.session_1_group_memory_usage_bytes,
        redis.session_50_groups_memory_usage_bytes,
        match redis.tokens_memory_usage_bytes {
            Some(bytes) => format!("{} B (MEMORY USAGE {bytes} B)", redis.sealed_tokens_bytes),
            None => "none stored by the login".to_string(),
        },
        redis.user_index_memory_usage_bytes,
        redis.used_memory_bytes_final as f64 / 1e6,
        redis.sessions_final,
        kb_to_mb(hwm_after_main.portcullis_redis),
        kb_to_mb(hwm_after_main.portcullis_memory),
        kb_to_mb(hwm_after_main.floor_a),
        kb_to_mb(hwm_after_main.floor_b),
    )
}

pub fn kb_to_mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}
