//! How a capability's module reaches its context in a store's data, without
//! knowing the store: the data `Holds` the context.

/// Store data that holds a capability context `C`.
pub trait Holds<C>: 'static {
    /// The context.
    fn held(&mut self) -> &mut C;
}
