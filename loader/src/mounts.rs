//! The sandbox filesystem view (see issue 4).
