pub struct TextView<'a> {
    pub text: &'a str,
}
impl<'a> TextView<'a> {
    pub fn new(text: &'a str) -> Self {
        Self { text }
    }
}
