//! A failed call inside the C shell: the error boxed, so that a call's result fits a
//! register and the cache-hit path moves no error-sized value through memory.

use plugin_api::TaskError;

use super::sized::ArgError;

pub struct Failure(Box<TaskError>);

impl Failure {
    pub fn error(&self) -> &TaskError {
        &self.0
    }
}

impl From<TaskError> for Failure {
    #[cold]
    fn from(error: TaskError) -> Self {
        Self(Box::new(error))
    }
}

impl From<ArgError> for Failure {
    #[cold]
    fn from(error: ArgError) -> Self {
        Self(Box::new(error.into()))
    }
}
