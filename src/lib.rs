pub use rotor_kernel as kernel;
