throw new Error('syntax of the universe is wrong');
