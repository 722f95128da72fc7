//! A live account's what-if and order-check objects, reused for the next call
//! when nobody else holds them: a bot that reads a what-if and drops it gets
//! the same object back, refilled, instead of a new one made and freed (the
//! way CPython's `zip` reuses its result tuple).

use pyo3::prelude::*;
use std::cell::UnsafeCell;

/// A value inside a frozen Python object that the account replaces only while
/// its own reference is the object's only one (see [`sole`]).
pub struct Reusable<T>(UnsafeCell<T>);

// SAFETY: the value is written only through `set`, whose caller holds the
// object's only reference under the account's write lock: no other thread (nor
// this one) can be reading it. Everything else only reads.
unsafe impl<T: Send + Sync> Sync for Reusable<T> {}

impl<T> Reusable<T> {
    pub fn new(value: T) -> Self {
        Reusable(UnsafeCell::new(value))
    }

    pub fn get(&self) -> &T {
        // SAFETY: see `Sync` above: no write overlaps a read.
        unsafe { &*self.0.get() }
    }

    /// Put `value` in place of the current one (dropped where it is).
    ///
    /// # Safety
    /// The object holding this cell is [`sole`]: the caller's reference is its
    /// only one, so no reference to the value exists anywhere else.
    pub unsafe fn set(&self, value: T) {
        unsafe { *self.0.get() = value }
    }
}

/// `object` when the caller's reference is the only one: nobody else can read
/// it, so its [`Reusable`] values may be replaced (the classes reused this way
/// support no weak references and are not tracked by the garbage collector).
pub fn sole<'a, T>(_py: Python<'_>, object: &'a Py<T>) -> Option<&'a Py<T>> {
    // SAFETY: the object is alive (`object` is a reference to it) and the thread is attached.
    let count = unsafe { pyo3::ffi::Py_REFCNT(object.as_ptr()) };
    (count == 1).then_some(object)
}
