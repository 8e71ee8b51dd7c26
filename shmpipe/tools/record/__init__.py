"""`shmpipe record`: arguments, the paced session, keyboard, live view and figures."""
