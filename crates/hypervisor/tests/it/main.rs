//! The hypervisor crate's one integration-test binary: the simulated agent and the capacity
//! rules (`sim`), the isolation rules (`net`), and real guests under QEMU/TCG (`guest`, helped
//! by `support`).

mod guest;
mod net;
mod sim;
mod support;
