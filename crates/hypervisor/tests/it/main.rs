//! The hypervisor crate's one integration-test binary: the simulated agent and the capacity
//! rules (`sim`), and real guests under QEMU/TCG (`guest`, with `support`).

mod guest;
mod sim;
mod support;
