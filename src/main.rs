fn main() {
    println!("rotor: the CLI arrives with the simulator and real-host issues");
}
